/* batchlab dashboard: the per-layer panel. For one run (a menu of the runs that recorded
   layer/<name>/... rows), gradient norm and update ratio vs step, one line per layer, log y,
   with the run's per-layer findings beside it (summary.layer_kinds says which kinds those are).
   Reads the rows the page already polled (``data``); text goes through textContent only. */
(function (global) {
  "use strict";
  var BC = global.BatchlabCharts, el = BC.el, fmt = BC.fmt;
  var SIGNALS = [["grad_norm", "gradient norm"], ["update_ratio", "update ratio |Δw| / |w|"]];
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];

  /* Layer -> columns of one signal for one run's rows. */
  function layers(rows, signal) {
    var out = {};
    Object.keys(rows || {}).forEach(function (name) {
      var m = /^layer\/(.+)\/([a-z_]+)$/.exec(name);
      if (m && m[2] === signal) out[m[1]] = rows[name];
    });
    return out;
  }

  function chart(box, title, byLayer) {
    var names = Object.keys(byLayer);
    if (!names.length) { box.appendChild(el("p", {"class": "note", text: "no rows of " + title})); return; }
    var tables = names.map(function (n) {
      var c = byLayer[n];
      return [c.step, c.value.map(function (v) { return v > 0 ? v : null; })];  // 0 has no log
    });
    var series = [{label: "step"}].concat(names.map(function (n, i) {
      return {label: n, stroke: COLORS[i % COLORS.length], width: 1.4, spanGaps: true,
              value: function (u, v) { return fmt(v); }};
    }));
    new global.uPlot({width: Math.max(320, Math.min(560, box.clientWidth || 480)), height: 240,
                      scales: {x: {time: false}, y: {distr: 3}},
                      axes: [{label: "step", values: BC.ticks}, {label: title, size: 60, values: BC.ticks}],
                      series: series}, global.uPlot.join(tables), box);
  }

  /* Draw the panel into ``container``; keeps the chosen run across redraws. */
  function panel(container, runs, data, summary) {
    var watched = runs.filter(function (r) { return Object.keys(layers(data[r.run_id], "grad_norm")).length; });
    var keep = container.dataset.run;
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!watched.length) {
      container.appendChild(el("p", {"class": "note", text: "No run recorded per-layer signals (train.watch)."}));
      return;
    }
    var kinds = (summary || {}).layer_kinds || [];
    var flagged = watched.filter(function (r) {
      return (((summary || {}).findings || {})[r.run_id] || []).some(function (f) { return kinds.indexOf(f.kind) >= 0; });
    });
    var sel = el("select", {"class": "bl-layer-run", "aria-label": "run"});
    watched.forEach(function (r) { sel.appendChild(el("option", {value: r.run_id, text: r.label + " · " + r.status})); });
    sel.value = watched.some(function (r) { return r.run_id === keep; }) ? keep : (flagged[0] || watched[0]).run_id;
    container.dataset.run = sel.value;
    sel.onchange = function () { container.dataset.run = sel.value; panel(container, runs, data, summary); };
    container.appendChild(el("label", {}, ["run ", sel]));
    var rows = data[sel.value];
    var charts = el("div", {"class": "bl-layer-charts"});
    SIGNALS.forEach(function (s) {
      var box = el("div", {"class": "bl-chart"});
      charts.appendChild(box);
      chart(box, s[1], layers(rows, s[0]));
    });
    var said = (((summary || {}).findings || {})[sel.value] || []).filter(function (f) {
      return kinds.indexOf(f.kind) >= 0;
    }).map(function (f) { return f.text; });
    if (!said.length) said = ["no per-layer finding for this run."];
    container.appendChild(el("div", {"class": "curves"}, [charts,
      el("aside", {"class": "card"}, [el("ul", {}, said.map(function (t) { return el("li", {text: t}); }))])]));
  }

  global.BatchlabLayers = {panel: panel, layers: layers};
})(window);
