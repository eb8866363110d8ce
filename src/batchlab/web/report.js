/* The static report's interactive charts: reads the JSON embedded beside this script (one
   block per experiment, so a comparison holds two) and draws it with BatchlabCharts. No
   network: the data, uPlot and these scripts are all inside the report file. When done it
   sets data-charts-ok="N" on its block (N charts drawn) for headless checks. */
(function () {
  "use strict";
  var box = document.currentScript.parentNode;
  var BC = window.BatchlabCharts;
  var payload = JSON.parse(box.querySelector("script.bl-data").textContent);
  box.querySelector(".bl-legend-box").appendChild(BC.styleLegend(payload.style));
  // the second chart: val_acc, or val_loss for a regression (no run recorded val_acc)
  var metrics = ["train_loss", ["val_acc", "val_loss"]], data = {};
  BC.appendRows(data, payload.curves);
  var charts = Array.prototype.map.call(box.querySelectorAll(".bl-chart"), function (node, i) {
    return new BC.CurveChart(node, {metric: metrics[i], data: data, alpha: i ? 0 : 0.9,
                                    runs: payload.runs, style: payload.style});
  });
  // the answer opens the report: beside the curves only the runs' verdicts
  BC.diagnosis(box.querySelector(".bl-diagnosis"), payload.runs, payload.style, payload.summary, charts,
               {answer: false, runs: true});
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.render(true); }); });
  box.dataset.chartsOk = String(charts.filter(function (c) { return c.plot; }).length);
})();
