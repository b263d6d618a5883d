/* The sweep page: parallel coordinates over the sweep's params and the objective, best so far, parameter importance. */
(function () {
  "use strict";

  const K = window.KilnDash;
  const Plotly = window.Plotly;
  const config = JSON.parse(document.getElementById("sweep-config").textContent);
  const progress = JSON.parse(document.getElementById("sweep-progress").textContent);
  const plotConfig = { responsive: true, displaylogo: false };
  const objective = config.best ? { key: config.best, agg: config.mode } : null;
  const drawn = [];

  if (config.runs.length) {
    const trace = K.parcoordsTrace(config.runs, config.params, objective ? [objective] : [], objective);
    drawn.push(Plotly.newPlot("parcoords", [trace], K.themed({ height: 440, margin: { l: 70, r: 70, t: 60, b: 30 } }), plotConfig));
  }

  if (progress.length) {
    const names = new Map(config.runs.map((run) => [run.id, K.esc(K.runLabel(run))]));
    const label = K.esc(config.best);
    drawn.push(Plotly.newPlot("best-so-far", [
      {
        type: "scatter", mode: "markers", name: "run", x: progress.map((p) => p.order), y: progress.map((p) => p.value),
        text: progress.map((p) => names.get(p.run)), marker: { color: "#9ca3af", size: 8 }, meta: [label],
        hovertemplate: "<b>%{text}</b><br>finished #%{x}<br>%{meta[0]}: %{y:.6g}<extra></extra>",
      },
      {
        type: "scatter", mode: "lines", name: "best so far", x: progress.map((p) => p.order), y: progress.map((p) => p.best),
        line: { shape: "hv", color: "#c2410c", width: 2.5 }, meta: [label],
        hovertemplate: "best after %{x} runs<br>%{meta[0]}: %{y:.6g}<extra></extra>",
      },
    ], K.themed({
      height: 360, margin: { l: 60, r: 20, t: 20, b: 50 },
      xaxis: { title: { text: "runs finished" }, dtick: progress.length > 20 ? undefined : 1 },
      yaxis: { title: { text: label + " (" + config.mode + ")" } },
    }), plotConfig));
  }

  const importance = Object.entries(config.importance || {});
  if (importance.length) {
    importance.sort((a, b) => a[1] - b[1]);
    drawn.push(Plotly.newPlot("importance", [{
      type: "bar", orientation: "h", x: importance.map((e) => e[1]), y: importance.map((e) => K.esc(e[0])),
      marker: { color: "#c2410c" }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
    }], K.themed({
      height: 60 + 28 * importance.length, margin: { l: 140, r: 20, t: 10, b: 40 },
      xaxis: { title: { text: "importance (PED-ANOVA)" }, rangemode: "tozero" },
    }), plotConfig));
  }

  Promise.all(drawn).then(() => {
    document.body.dataset.chartsReady = "1";
  });
})();
