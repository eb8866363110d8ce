/* batchlab interactive charts: learning curves on uPlot (vendored, MIT) and the answer and
   the runs' verdicts beside them. Shared by `batchlab dashboard` (served) and the static report (inlined).

   Data never becomes markup: every text from the store goes through textContent (el() below),
   never innerHTML. Colour = the LR applied, line style = batch size, as in the report's
   figures: the server sends each run's colour and dash from report/style.py's StyleMap. */
(function (global) {
  "use strict";

  var CLOCKS = [["epoch", "epochs"], ["step", "steps"], ["examples", "examples seen"],
                ["wall_time", "wall time (s)"]];
  var METRIC_ORDER = ["train_loss", "val_loss", "val_acc", "train_eval_loss", "train_acc", "lr"];

  /* An element with attributes and children; strings become text nodes (never parsed). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  /* A number for people: 4 significant digits, thousands as k/M, null as a dash. */
  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
    if (typeof v !== "number") return String(v);
    var a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(digits || 4));
  }

  /* Axis tick labels: log axes pass null for the ticks they leave unlabelled. */
  function ticks(u, vs) {
    return vs.map(function (v) { return v === null ? "" : fmt(v); });
  }

  /* Exponential moving average with TensorBoard's debiasing; nulls are kept and skipped. */
  function ema(values, alpha) {
    if (!alpha) return values;
    var out = new Array(values.length), s = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      s = alpha * s + (1 - alpha) * v; n++;
      out[i] = s / (1 - Math.pow(alpha, n));
    }
    return out;
  }

  /* The compact style legend of the report: one swatch per LR colour, one per batch dash. */
  function styleLegend(style) {
    var box = el("div", {"class": "bl-style-legend"});
    (style.lrs || []).forEach(function (e) {
      var sw = el("span", {"class": "bl-swatch"});
      sw.style.background = e.color;
      box.appendChild(el("span", {"class": "bl-key"}, [sw, e.label]));
    });
    (style.batches || []).forEach(function (e) {
      var c = el("canvas", {"width": "44", "height": "10", "class": "bl-dash"});
      var g = c.getContext("2d");
      g.strokeStyle = "#262626"; g.lineWidth = 2; g.setLineDash(e.dash);
      g.beginPath(); g.moveTo(0, 5); g.lineTo(44, 5); g.stroke();
      box.appendChild(el("span", {"class": "bl-key"}, [c, e.label]));
    });
    return box;
  }

  /* Whether the runs record a validation loss but never an accuracy (a regression: float
     targets), from their table rows (final/best columns) and the curve rows a page holds; runs
     that evaluated nothing yet say nothing either way (report/plotdata.py's is_regression). */
  function num(v) { return typeof v === "number" && isFinite(v); }

  function isRegression(runs, data) {
    function has(metric) {
      return (runs || []).some(function (r) { return num(r["final_" + metric]) || num(r["best_" + metric]); }) ||
        Object.keys(data || {}).some(function (rid) {
          var cols = data[rid][metric];
          return !!cols && cols.value.some(num);
        });
    }
    return has("val_loss") && !has("val_acc");
  }

  /* A loss chart's y range ignores what lies far above every run's start: at most
     LOSS_CAP times the largest first value of a line (as the report's figures), so one diverged
     run's 1e34 does not flatten every other line. The diverged line leaves the top of the chart. */
  var LOSS_CAP = 3;

  /* One chart of one metric over every run, with its own controls.
     opts: {metric, runs: [{run_id, label, status}], style: {runs: {id: {color, dash}}}}.
     ``metric`` may be a list of preferences (["val_acc", "val_loss"]): until the user picks
     one, the chart shows the first that has rows (a regression has no val_acc). */
  function CurveChart(container, opts) {
    this.box = container;
    this.prefer = Array.isArray(opts.metric) ? opts.metric : null;
    this.metric = (this.prefer ? this.prefer[0] : opts.metric) || "train_loss";
    this.clock = opts.clock || "epoch";
    this.log = !!opts.log;
    this.alpha = opts.alpha === undefined ? 0.9 : opts.alpha;
    this.runs = [];
    this.style = {runs: {}};
    this.data = opts.data || {};  // run id -> metric -> columns (shared by a page's charts)
    this.hidden = {};    // run id -> true when toggled off in the legend
    this.zoomed = false;
    this.plot = null;
    this._build();
    this.setRuns(opts.runs || [], opts.style || this.style);
  }

  CurveChart.prototype._build = function () {
    var self = this;
    this.metricSel = el("select", {"class": "bl-metric", "aria-label": "metric"});
    this.clockSel = el("select", {"class": "bl-clock", "aria-label": "x axis"});
    CLOCKS.forEach(function (c) { self.clockSel.appendChild(el("option", {value: c[0], text: c[1]})); });
    this.clockSel.value = this.clock;
    this.logBox = el("input", {type: "checkbox", "class": "bl-log"});
    this.logBox.checked = this.log;
    this.smooth = el("input", {type: "range", min: "0", max: "0.99", step: "0.01", "class": "bl-smooth"});
    this.smooth.value = String(this.alpha);
    this.smoothOut = el("span", {"class": "bl-smooth-value", text: this.alpha.toFixed(2)});
    var reset = el("button", {type: "button", text: "reset zoom"});
    this.metricSel.onchange = function () {
      self.metric = self.metricSel.value; self.prefer = null; self.zoomed = false; self.render(true);
    };
    this.clockSel.onchange = function () { self.clock = self.clockSel.value; self.zoomed = false; self.render(true); };
    this.logBox.onchange = function () { self.log = self.logBox.checked; self.render(true); };
    this.smooth.oninput = function () {
      self.alpha = +self.smooth.value; self.smoothOut.textContent = self.alpha.toFixed(2); self.render(false);
    };
    reset.onclick = function () { self.zoomed = false; self.render(true); };
    var bar = el("div", {"class": "bl-controls"}, [
      el("label", {}, ["metric ", this.metricSel]), el("label", {}, ["x ", this.clockSel]),
      el("label", {}, [this.logBox, " log y"]),
      el("label", {}, ["smoothing (EMA) ", this.smooth, " ", this.smoothOut]), reset]);
    this.area = el("div", {"class": "bl-plot"});
    this.empty = el("p", {"class": "bl-empty note"});
    this.box.appendChild(bar);
    this.box.appendChild(this.area);
    this.box.appendChild(this.empty);
  };

  /* Runs (table rows) and their style; metrics seen so far fill the metric menu. */
  CurveChart.prototype.setRuns = function (runs, style) {
    var changed = JSON.stringify(runs.map(function (r) { return [r.run_id, r.label]; })) !==
                  JSON.stringify(this.runs.map(function (r) { return [r.run_id, r.label]; }));
    this.runs = runs;
    this.style = style;
    if (changed) this.render(true);
  };

  /* Append rows {run id: {metric: {value: [], step: [], ...}}} to ``data`` (shared by the
     charts of a page); returns how many rows were new. */
  function appendRows(data, curves) {
    var added = 0;
    Object.keys(curves).forEach(function (rid) {
      var mine = data[rid] || (data[rid] = {});
      Object.keys(curves[rid]).forEach(function (name) {
        var cols = curves[rid][name], have = mine[name];
        if (!have) { mine[name] = cols; added += cols.value.length; return; }
        var last = have.step.length ? have.step[have.step.length - 1] : -Infinity;
        for (var i = 0; i < cols.step.length; i++) {
          if (cols.step[i] <= last) continue;  // a row already drawn
          Object.keys(have).forEach(function (k) { have[k].push(cols[k][i]); });
          added++;
        }
      });
    });
    return added;
  }

  /* The last step seen per run in ``data``: a live view asks for the rows from there on
     (that step again too: its evaluation may be stored after its training row). */
  function lastSteps(data) {
    var out = {};
    Object.keys(data).forEach(function (rid) {
      var last = -1;
      Object.keys(data[rid]).forEach(function (name) {
        var s = data[rid][name].step;
        if (s.length && s[s.length - 1] > last) last = s[s.length - 1];
      });
      out[rid] = last;
    });
    return out;
  }

  CurveChart.prototype._metrics = function () {
    var seen = {}, self = this;
    Object.keys(this.data).forEach(function (rid) {
      Object.keys(self.data[rid]).forEach(function (m) {
        if (m.indexOf("layer/") !== 0) seen[m] = 1;  // per-layer rows: the per-layer panel's
      });
    });
    return Object.keys(seen).sort(function (a, b) {
      var ia = METRIC_ORDER.indexOf(a), ib = METRIC_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : 1);
    });
  };

  CurveChart.prototype._syncMenu = function () {
    var names = this._metrics(), sel = this.metricSel;
    if (this.prefer) {  // not chosen by the user yet: the first preferred metric with rows
      var have = this.prefer.filter(function (m) { return names.indexOf(m) >= 0; });
      if (have.length) this.metric = have[0];
    }
    if (names.indexOf(this.metric) < 0 && names.length) names.unshift(this.metric);
    var now = Array.prototype.map.call(sel.options, function (o) { return o.value; });
    if (now.join("|") === names.join("|")) return;
    while (sel.firstChild) sel.removeChild(sel.firstChild);
    names.forEach(function (m) { sel.appendChild(el("option", {value: m, text: m})); });
    sel.value = this.metric;
  };

  /* Aligned uPlot data for the current metric and clock: one series per run with rows. */
  CurveChart.prototype._table = function () {
    var self = this, tables = [], shown = [], points = 0, starts = [];
    this.runs.forEach(function (r) {
      var cols = (self.data[r.run_id] || {})[self.metric];
      if (!cols || !cols.value.length) return;
      var xs = [], ys = [], sm = ema(cols.value, self.alpha), first = null;
      for (var i = 0; i < sm.length; i++) {
        var x = cols[self.clock][i], y = sm[i];
        if (x === null) continue;
        if (self.log && !(y > 0)) y = null;
        if (first === null && num(y)) first = y;
        xs.push(x); ys.push(y);
      }
      if (first !== null) starts.push(Math.abs(first));
      points += cols.value.length;
      tables.push([xs, ys]);
      shown.push(r);
    });
    var loss = this.metric.indexOf("loss") >= 0 && starts.length;
    var cap = loss ? LOSS_CAP * Math.max.apply(null, starts) : Infinity;
    return {data: tables.length ? global.uPlot.join(tables) : null, runs: shown, points: points, cap: cap};
  };

  /* The y range of the data from ``lo`` to ``hi``, the top at most ``cap`` (LOSS_CAP). */
  function yRange(log, cap) {
    return function (u, lo, hi) {
      if (lo === null || hi === null) return [lo, hi];
      if (hi > cap && lo < cap) hi = cap;
      return log ? global.uPlot.rangeLog(lo, hi, 10, true) : global.uPlot.rangeNum(lo, hi, 0.1, true);
    };
  }

  CurveChart.prototype.render = function (rebuild) {
    this._syncMenu();
    var t = this._table(), self = this;
    this.box.dataset.points = String(t.points);
    this.box.dataset.series = String(t.runs.length);
    this.empty.textContent = t.data ? "" : "no rows of " + this.metric + " yet";
    if (!t.data) { if (this.plot) { this.plot.destroy(); this.plot = null; } return; }
    var key = t.runs.map(function (r) { return r.run_id; }).join("|") + this.metric + this.clock + this.log + t.cap;
    if (this.plot && !rebuild && key === this._key) {
      this.plot.setData(t.data, !this.zoomed);
      return;
    }
    if (this.plot) this.plot.destroy();
    this._key = key;
    var clockName = CLOCKS.filter(function (c) { return c[0] === self.clock; })[0][1];
    var series = [{label: clockName, value: function (u, v) { return fmt(v); }}];
    t.runs.forEach(function (r) {
      var st = self.style.runs[r.run_id] || {color: "#555", dash: []};
      series.push({label: r.label + (r.status && r.status !== "completed" ? " (" + r.status + ")" : ""),
                   stroke: st.color, dash: st.dash, width: 1.6, spanGaps: true,
                   show: !self.hidden[r.run_id], points: {show: false},
                   value: function (u, v) { return fmt(v); }});
    });
    var width = Math.max(320, this.area.clientWidth || this.box.clientWidth || 600);
    this.plot = new global.uPlot({
      width: width, height: 300,
      scales: {x: {time: false}, y: {distr: this.log ? 3 : 1, range: yRange(this.log, t.cap)}},
      axes: [{label: clockName, values: ticks}, {label: this.metric, size: 60, values: ticks}],
      series: series,
      cursor: {drag: {x: true, y: false}, focus: {prox: 16}},
      focus: {alpha: 0.25},
      // legend markers carry the batch size's line style too (solid, dashed or dotted)
      legend: {live: true, markers: {width: 2, dash: function (u, i) {
        var d = u.series[i].dash || [];
        return !d.length ? "solid" : d[0] < 3 ? "dotted" : "dashed";
      }}},
      hooks: {
        setSeries: [function (u, i, o) {
          if (i && o && o.show !== undefined) self.hidden[t.runs[i - 1].run_id] = !o.show;
        }],
        setSelect: [function (u) { if (u.select.width > 0) self.zoomed = true; }],
        // the y range drawn, for headless checks (the axes are canvas, not text)
        setScale: [function (u, k) { if (k === "y") self.box.dataset.yMax = String(u.scales.y.max); }]
      }
    }, t.data, this.area);
    t.runs.forEach(function (r, k) { self.plot.series[k + 1]._runId = r.run_id; });
  };

  /* Highlight one run's line (null: none), e.g. while its findings are hovered. */
  CurveChart.prototype.focus = function (runId) {
    if (!this.plot) return;
    var i = runId === null ? -1 : this.plot.series.findIndex(function (s, k) { return k && s._runId === runId; });
    this.plot.setSeries(i < 1 ? null : i, {focus: true});
  };

  /* A closed fold of lines (the numbers behind a sentence); null when there are none. */
  function fold(lines, summary) {
    if (!lines || !lines.length) return null;
    return el("details", {"class": "bl-numbers"}, [el("summary", {text: summary || "numbers"}),
      el("ul", {}, lines.map(function (t) { return el("li", {text: t}); }))]);
  }

  /* The answer first (analysis/answer.py's Answer, the same block that opens the report):
     what to pick, its score and time to target, how sure, at most three sentences of why;
     then the findings grouped by question, folded, each sentence with its numbers on hover
     and in a fold. */
  function answerBlock(a) {
    var box = el("div", {"class": "bl-answer"}, [el("p", {"class": "bl-pick"}, [el("b", {text: a.headline})])]);
    [a.score, a.sure].forEach(function (t) { if (t) box.appendChild(el("p", {text: t})); });
    if ((a.why || []).length) {
      box.appendChild(el("ul", {"class": "bl-why"}, a.why.map(function (t) { return el("li", {text: t}); })));
    }
    var more = fold(a.details, "the numbers behind the pick");
    if (more) box.appendChild(more);
    var questions = Object.keys(a.groups || {});
    if (questions.length) {
      var all = el("details", {"class": "bl-groups"}, [el("summary", {text: "findings by question"})]);
      questions.forEach(function (q) {
        all.appendChild(el("h4", {text: q}));
        all.appendChild(el("ul", {}, a.groups[q].map(function (p) {
          var li = el("li", {}, [el("span", {text: p.sentence, title: (p.details || []).join(" ")})]);
          var f = fold(p.details);
          if (f) li.appendChild(f);
          return li;
        })));
      });
      box.appendChild(all);
    }
    return box;
  }

  /* The answer-first block (opts.answer; the static report shows it at the top of the page
     instead), and/or (opts.runs; the dashboard has its runs table right below instead) one line
     per run that did not end "ok": its label and its one sentence, the evidence on hover;
     hovering a line highlights the run in ``charts``. */
  function diagnosis(container, runs, style, summary, charts, opts) {
    while (container.firstChild) container.removeChild(container.firstChild);
    var s = summary || {}, verdicts = s.verdicts || {}, o = opts || {answer: true, runs: true};
    if (s.answer && o.answer) container.appendChild(answerBlock(s.answer));
    if (!o.runs) {
      if (!s.answer) container.appendChild(el("p", {"class": "note", text: "No answer yet: no run has been evaluated."}));
      return;
    }
    var list = el("div", {"class": "bl-findings"});
    runs.forEach(function (r) {
      var v = verdicts[r.run_id];
      if (!v || v.label === "ok") return;
      var sw = el("span", {"class": "bl-swatch"});
      sw.style.background = ((style.runs || {})[r.run_id] || {}).color || "#555";
      var block = el("div", {"class": "bl-run-findings", "data-run": r.run_id, title: (v.evidence || []).join("\n")}, [
        el("div", {"class": "bl-run-label"}, [sw, r.label + " · " + v.label]),
        el("div", {"class": "bl-run-sentence", text: v.sentence})]);
      block.onmouseenter = function () { (charts || []).forEach(function (c) { c.focus(r.run_id); }); };
      block.onmouseleave = function () { (charts || []).forEach(function (c) { c.focus(null); }); };
      list.appendChild(block);
    });
    if (list.firstChild) container.appendChild(el("h4", {text: "runs that did not end ok"}));
    else list.appendChild(el("p", {"class": "note", text: "No run has a problem yet."}));
    container.appendChild(list);
  }

  global.BatchlabCharts = {CurveChart: CurveChart, diagnosis: diagnosis, answerBlock: answerBlock, fold: fold,
                           styleLegend: styleLegend,
                           appendRows: appendRows, lastSteps: lastSteps, el: el, fmt: fmt, ema: ema,
                           isRegression: isRegression,
                           ticks: ticks};
})(window);
