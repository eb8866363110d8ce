/* batchlab dashboard: polls the read-only JSON API every 2 s and draws what it gets.
   Every text from the store is set with textContent (BatchlabCharts.el), never innerHTML. */
(function () {
  "use strict";
  var BC = window.BatchlabCharts, el = BC.el, fmt = BC.fmt;
  var POLL_MS = 2000, SUMMARY_MS = 15000;  // the summary re-reads every row: not every poll
  var HEAD = [  // [key, header, left-aligned?]
    ["run_id", "run", true], ["status", "status", true], ["batch_size", "batch"], ["lr", "lr (spec)"],
    ["lr_applied", "lr applied"], ["schedule", "schedule", true], ["seed", "seed"],
    ["progress", "progress", true]];
  var TAIL = [["steps", "steps"], ["wall_time_s", "time s"],
    ["diagnosis", "diagnosis", true], ["why", "why (click a row for the evidence)", true]];
  var ACC_COLUMNS = [["final_val_acc", "final val acc"], ["best_val_acc", "best val acc"],
    ["final_val_loss", "final val loss"]];
  // a regression has no accuracy: the loss it is compared by (analysis/metric.py), lowest and final
  var LOSS_COLUMNS = [["final_val_loss", "final val loss"], ["best_val_loss", "lowest val loss"]];
  var REASON_CHARS = 48;  // the status cell's short form of a run's error or pruning reason

  /* The runs table's columns: validation accuracy, or loss for a regression. */
  function columns() {
    return HEAD.concat(regression() ? LOSS_COLUMNS : ACC_COLUMNS, TAIL);
  }

  function regression() { return BC.isRegression(state.runs, state.data); }

  var state = null;  // the shown experiment's data; replaced when another is chosen

  function fresh(name) {
    var data = {};
    return {name: name, data: data, runs: [], style: {runs: {}}, summary: null, summaryAt: 0,
            signature: "", sort: {key: null, dir: 1}, open: {},
            charts: [new BC.CurveChart(clear("chart-a"), {metric: "train_loss", data: data}),
                     // a regression records no val_acc: its chart shows val_loss instead
                     new BC.CurveChart(clear("chart-b"), {metric: ["val_acc", "val_loss"], data: data, alpha: 0})]};
  }

  function clear(id) {
    var node = document.getElementById(id);
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function getJSON(path, params) {
    var q = Object.keys(params || {}).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    return fetch(path + (q ? "?" + q : ""), {cache: "no-store"}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    });
  }

  function showError(err) {
    var box = document.getElementById("error");
    box.hidden = !err;
    box.textContent = err ? String(err.message || err) : "";
  }

  /* ------------------------------------------------------------------ experiments */
  function loadExperiments() {
    return getJSON("/api/experiments").then(function (body) {
      document.getElementById("store").textContent = "store: " + body.store;
      var sel = document.getElementById("experiment");
      var names = body.experiments.map(function (e) { return e.name; });
      var have = Array.prototype.map.call(sel.options, function (o) { return o.value; });
      if (have.join("\n") !== names.join("\n")) {
        var keep = sel.value;
        while (sel.firstChild) sel.removeChild(sel.firstChild);
        body.experiments.forEach(function (e) {
          var counts = Object.keys(e.counts).map(function (k) { return e.counts[k] + " " + k; }).join(", ");
          sel.appendChild(el("option", {value: e.name, text: e.name + (counts ? " (" + counts + ")" : "")}));
        });
        var wanted = decodeURIComponent(location.hash.replace(/^#exp=/, ""));
        sel.value = names.indexOf(keep) >= 0 ? keep : names.indexOf(wanted) >= 0 ? wanted : names[names.length - 1] || "";
      }
      if (!names.length) document.getElementById("live").textContent = "the store has no experiment yet";
      return sel.value;
    });
  }

  /* ------------------------------------------------------------------ runs table */
  /* Why a run ended as it did (a failed run's error, a pruned run's reason), or "". */
  function reasonOf(r) { return r.reason || r.error || ""; }

  /* The first line of a reason, cut to REASON_CHARS; the cell's tooltip holds it in full. */
  function shortReason(text) {
    var line = text.split("\n")[0];
    return line.length > REASON_CHARS ? line.slice(0, REASON_CHARS - 1) + "…" : line;
  }

  function verdict(r) { return ((state.summary || {}).verdicts || {})[r.run_id] || null; }
  function cellValue(r, key) {
    if (key === "run_id") return r.run_id.slice(0, 10);
    if (key === "progress") {
      return r.total_steps ? r.progress_step + "/" + r.total_steps : String(r.progress_step || 0);
    }
    if (key === "status") return r.status + (reasonOf(r) ? " " + reasonOf(r) : "");  // filter finds it
    if (key === "diagnosis" || key === "why") {  // one label and one sentence (analysis/verdict.py)
      var v = verdict(r);
      return v ? (key === "diagnosis" ? v.label : v.sentence) : null;
    }
    return r[key];
  }

  function drawTable() {
    var COLUMNS = columns();
    var table = document.getElementById("runs"), head = table.tHead, body = table.tBodies[0];
    while (head.firstChild) head.removeChild(head.firstChild);
    var tr = el("tr");
    COLUMNS.forEach(function (c) {
      var cls = (c[2] ? "l" : "") + (state.sort.key === c[0] ? (state.sort.dir > 0 ? " sorted-up" : " sorted-down") : "");
      var th = el("th", {"class": cls, text: c[1], "data-key": c[0]});
      th.onclick = function () {
        state.sort = {key: c[0], dir: state.sort.key === c[0] ? -state.sort.dir : 1};
        drawTable();
      };
      tr.appendChild(th);
    });
    head.appendChild(tr);
    var needle = document.getElementById("filter").value.toLowerCase();
    var rows = state.runs.filter(function (r) {
      return !needle || COLUMNS.some(function (c) { return String(cellValue(r, c[0]) ?? "").toLowerCase().indexOf(needle) >= 0; });
    });
    if (state.sort.key) {
      var k = state.sort.key, d = state.sort.dir;
      rows.sort(function (a, b) {
        var x = k === "status" ? a.status : cellValue(a, k), y = k === "status" ? b.status : cellValue(b, k);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * d;
      });
    }
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (r) {
      var row = el("tr", {"data-run": r.run_id});
      COLUMNS.forEach(function (c) {
        var v = cellValue(r, c[0]);
        var cls = (c[2] ? "l" : "") + (c[0] === "status" ? " status-" + String(r.status).replace(/[^a-z]/g, "") : "");
        var td = el("td", {"class": cls, text: typeof v === "number" ? fmt(v) : (v === null || v === undefined ? "–" : String(v))});
        if (c[0] === "run_id") td.title = r.label;
        if (c[0] === "status" && reasonOf(r)) {  // the status with its reason: short here, whole on hover
          td.textContent = r.status;
          td.appendChild(el("span", {"class": "reason", text: shortReason(reasonOf(r))}));
          td.title = reasonOf(r);
        }
        row.appendChild(td);
      });
      body.appendChild(row);
      // hovering a run's row highlights its lines in the charts
      row.onmouseenter = function () { state.charts.forEach(function (ch) { ch.focus(r.run_id); }); };
      row.onmouseleave = function () { state.charts.forEach(function (ch) { ch.focus(null); }); };
      // clicking a row shows every finding with its numbers under it (the sentence says one)
      var v = verdict(r);
      if (!v || !(v.evidence || []).length) return;
      row.className = "expandable" + (state.open[r.run_id] ? " open" : "");
      row.onclick = function () { state.open[r.run_id] = !state.open[r.run_id]; drawTable(); };
      if (state.open[r.run_id]) {
        body.appendChild(el("tr", {"class": "evidence", "data-evidence": r.run_id}, [
          el("td", {"class": "l", colspan: String(COLUMNS.length)}, [
            el("ul", {}, v.evidence.map(function (t) { return el("li", {text: t}); }))])]));
      }
    });
    document.getElementById("run-count").textContent = rows.length + " of " + state.runs.length + " runs";
  }

  /* ------------------------------------------------------------------ summary parts */
  /* The configuration cell of a time-to-target row, as the report's: the fastest in steps
     (epochs or examples when an imported log has no steps), and the wall time's own when another. */
  function fastest(r) {
    var label = r.steps_label || r.epochs_label || r.examples_label;
    if (!label) return "not reached";
    return r.wall_time_label && r.wall_time_label !== label ? label + " (wall time: " + r.wall_time_label + ")" : label;
  }

  function heatTable(h) {
    var vals = h.mean.flat().filter(function (v) { return v !== null; });
    var loss = h.metric.indexOf("loss") >= 0;  // a regression's cells: lower is better
    var hi = vals.length ? Math.max.apply(null, vals) : 1, low = vals.length ? Math.min.apply(null, vals) : 0;
    var lo = loss ? low : Math.min(hi - 0.1, low);  // accuracy: at least 10 points of span
    var t = el("table", {"class": "heat"});
    t.appendChild(el("tr", {}, [el("th", {text: "lr \\ batch"})].concat(
      h.batch_sizes.map(function (b) { return el("th", {text: String(b)}); }))));
    h.lrs.forEach(function (lr, i) {
      var tr = el("tr", {}, [el("th", {text: fmt(lr)})]);
      h.batch_sizes.forEach(function (b, j) {
        var m = h.mean[i][j], s = h.std[i][j];
        var td = el("td", {text: m === null ? (h.n_diverged[i][j] ? "diverged" : "–") : fmt(m, 3) + (h.n[i][j] > 1 && s !== null ? " ± " + fmt(s, 2) : "")});
        if (m !== null) {
          var f = Math.max(0, Math.min(1, (m - lo) / ((hi - lo) || 1)));
          if (loss) f = 1 - f;
          td.style.background = "hsl(" + Math.round(10 + 110 * f) + ", 65%, " + Math.round(88 - 18 * f) + "%)";
        }
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return el("div", {}, [el("h3", {text: h.metric.replace(/_/g, " ") + " — schedule: " + h.facet}), t]);
  }

  function simpleTable(headers, rows) {
    return el("table", {}, [el("tr", {}, headers.map(function (h) { return el("th", {"class": "l", text: h}); }))].concat(
      rows.map(function (r) {
        return el("tr", {}, r.map(function (v) {
          return el("td", {"class": typeof v === "number" ? "" : "l", text: typeof v === "number" ? fmt(v) : (v == null ? "–" : String(v))});
        }));
      })));
  }

  /* Cost to the target per batch size on log-log axes, with perfect scaling from the smallest
     batch (steps and time ∝ 1/B, examples constant), as the report's figure draws it. */
  var TARGET_CLOCKS = [["steps", "steps"], ["examples", "examples seen"], ["wall_time", "wall time (s)"]];

  function targetChart(box, t) {
    var sel = el("select", {"class": "bl-target-clock", "aria-label": "clock"});
    TARGET_CLOCKS.forEach(function (c) { sel.appendChild(el("option", {value: c[0], text: c[1]})); });
    var area = el("div", {"class": "bl-chart target-chart"});
    box.appendChild(el("div", {}, [el("label", {}, ["cost to target in ", sel])]));
    box.appendChild(area);
    var plot = null;
    function draw() {
      var clock = sel.value, ys = t.values[clock], bs = t.batch_sizes;
      var i0 = ys.findIndex(function (v) { return v !== null; });
      var ideal = bs.map(function (b) {
        return i0 < 0 ? null : clock === "examples" ? ys[i0] : ys[i0] * bs[i0] / b;
      });
      var label = TARGET_CLOCKS.filter(function (c) { return c[0] === clock; })[0][1];
      if (plot) plot.destroy();
      plot = new window.uPlot({
        width: Math.min(620, Math.max(320, box.clientWidth - 20)), height: 260,
        scales: {x: {time: false, distr: 3}, y: {distr: 3}},
        axes: [{label: "batch size", values: BC.ticks}, {label: label, size: 60, values: BC.ticks}],
        series: [{label: "batch", value: function (u, v) { return fmt(v); }},
                 {label: "fastest configuration", stroke: "#175cd3", width: 2, points: {size: 7},
                  value: function (u, v) { return fmt(v); }},
                 {label: "perfect scaling", stroke: "#8a8f98", dash: [2, 4], width: 1.4,
                  value: function (u, v) { return fmt(v); }}]
      }, [bs, ys, ideal], area);
    }
    sel.onchange = draw;
    draw();
  }

  function drawSummary() {
    var s = state.summary || {};
    // the answer only: each run's label and sentence are in the runs table below
    BC.diagnosis(document.getElementById("diagnosis"), state.runs, state.style, s, state.charts,
                 {answer: true, runs: false});
    window.BatchlabLayers.panel(document.getElementById("layers"), state.runs, state.data, s);
    var heat = clear("heatmaps"), loss = regression();
    heat.className = "heatmaps";
    // titled by the metric the cells hold (payload.py: a regression's are its val loss)
    document.getElementById("heatmaps-title").textContent =
      (loss ? "Validation loss" : "Accuracy") + " over LR × batch size";
    (s.heatmaps || []).forEach(function (h) { heat.appendChild(heatTable(h)); });
    if (!heat.firstChild) heat.appendChild(el("p", {"class": "note", text: "No evaluation yet."}));
    var target = clear("target"), t = s.target;
    // the target is a validation accuracy: a regression has none (the report leaves it out too)
    document.getElementById("target-section").hidden = loss;
    if (t && t.target === null) {
      target.appendChild(el("p", {"class": "note", text: "No target yet: no run has evaluated a validation accuracy."}));
    } else if (t && t.rows.length) {
      target.appendChild(el("p", {"class": "note", text: "Target: validation accuracy " + fmt(t.target) +
        ". Per batch size the fastest configuration whose every seed reached it (means over seeds)." +
        (t.fit ? " Critical batch size (fit): " + fmt(t.fit[2]) + "." : "")}));
      if (t.batch_sizes.length > 1) targetChart(target, t);
      target.appendChild(simpleTable(["batch", "steps", "epochs", "examples", "wall time s", "configuration"],
        t.rows.map(function (r) { return [r.batch_size, r.steps, r.epochs, r.examples, r.wall_time,
          fastest(r)]; })));
    } else target.appendChild(el("p", {"class": "note", text: "No run reached a target yet."}));
    var probes = clear("probes");
    if ((s.probes || []).length) {
      probes.appendChild(simpleTable(["#", "probe", "settings", "reading"],
        s.probes.map(function (p) { return [String(p.id), p.title, p.settings || "–", p.reading]; })));
    } else probes.appendChild(el("p", {"class": "note", text: "No probes stored for this experiment."}));
    drawTable();
  }

  /* ------------------------------------------------------------------ the poll */
  function poll() {
    var st = state;
    if (!st || !st.name) return Promise.resolve();
    return getJSON("/api/runs", {experiment: st.name}).then(function (body) {
      if (st !== state) return;
      // a run that started again (resumed or re-run) replaced its rows past a checkpoint:
      // drop what this page holds of it and fetch it afresh
      var before = st.attempts || {}, restarted = false;
      st.attempts = {};
      body.runs.forEach(function (r) {
        st.attempts[r.run_id] = r.attempts;
        if (before[r.run_id] !== undefined && before[r.run_id] !== r.attempts) {
          delete st.data[r.run_id];
          restarted = true;
        }
      });
      if (restarted) st.charts.forEach(function (c) { c.render(true); });
      st.runs = body.runs;
      st.style = body.style;
      clear("style-legend").appendChild(BC.styleLegend(body.style));
      st.charts.forEach(function (c) { c.setRuns(st.runs, st.style); });
      drawTable();
      return getJSON("/api/curves", {experiment: st.name, since: JSON.stringify(BC.lastSteps(st.data))});
    }).then(function (body) {
      if (!body || st !== state) return;
      if (BC.appendRows(st.data, body.curves)) st.charts.forEach(function (c) { c.render(false); });
      var sig = st.runs.map(function (r) { return r.status + r.progress_step; }).join();
      if (sig !== st.signature && Date.now() - st.summaryAt > SUMMARY_MS || !st.summaryAt) {
        st.signature = sig;
        st.summaryAt = Date.now();
        return getJSON("/api/summary", {experiment: st.name}).then(function (s) {
          if (st === state) { st.summary = s; drawSummary(); }
        });
      }
    }).then(function () {
      showError(null);
      document.getElementById("live").textContent = "live · updated " + new Date().toLocaleTimeString();
    });
  }

  function choose(name) {
    state = fresh(name);
    if (name) history.replaceState(null, "", "#exp=" + encodeURIComponent(name));
    return poll();
  }

  function loop() {
    var p = state && state.name ? poll() : loadExperiments().then(choose);
    p.catch(showError).then(function () { setTimeout(loop, POLL_MS); });
  }

  document.getElementById("experiment").onchange = function (e) { choose(e.target.value).catch(showError); };
  document.getElementById("filter").oninput = function () { if (state) drawTable(); };
  setInterval(function () { loadExperiments().catch(showError); }, 10000);
  window.addEventListener("resize", function () {
    if (state) state.charts.forEach(function (c) { c.render(true); });
  });
  loadExperiments().then(choose).catch(showError).then(function () { setTimeout(loop, POLL_MS); });
})();
