/* Shared by the compare and sweep pages: escaping, colours, parallel coordinates. */
(function () {
  "use strict";

  const PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#c2410c", "#0f766e", "#4338ca", "#be185d", "#65a30d", "#0369a1",
  ];

  // Plotly draws names, labels and hover text with a little HTML of its own: user text goes in escaped.
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function color(index) {
    return PALETTE[index % PALETTE.length];
  }

  function runLabel(run) {
    return "#" + run.number + " " + run.name;
  }

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  // One parcoords axis per param (numbers as they are, anything else as categories) and per metric.
  function parcoordsTrace(runs, params, metrics, colorBy) {
    const dimensions = [];
    for (const name of params) {
      const values = runs.map((run) => run.params[name]);
      if (values.every((v) => v === undefined || v === null || isNumber(v))) {
        dimensions.push({ label: esc(name), values: values.map((v) => (isNumber(v) ? v : NaN)) });
      } else {
        const categories = Array.from(new Set(values.map((v) => String(v)))).sort();
        dimensions.push({
          label: esc(name),
          values: values.map((v) => categories.indexOf(String(v))),
          tickvals: categories.map((_, i) => i),
          ticktext: categories.map(esc),
        });
      }
    }
    for (const metric of metrics) {
      dimensions.push({
        label: esc(metric.key + " (" + metric.agg + ")"),
        values: runs.map((run) => {
          const summary = run.summary[metric.key];
          return summary && isNumber(summary[metric.agg]) ? summary[metric.agg] : NaN;
        }),
      });
    }
    const line = { color: "#1f77b4" };
    if (colorBy) {
      line.color = runs.map((run) => {
        const summary = run.summary[colorBy.key];
        return summary && isNumber(summary[colorBy.agg]) ? summary[colorBy.agg] : NaN;
      });
      line.colorscale = "Viridis";
      line.reversescale = colorBy.agg === "min";
      line.showscale = true;
      line.colorbar = { title: { text: esc(colorBy.key) } };
    }
    return { type: "parcoords", dimensions: dimensions, line: line };
  }

  function download(div, format, name) {
    return window.Plotly.downloadImage(div, { format: format, filename: name, width: 1200, height: 700 });
  }

  // A Plotly layout in the page's colour theme (webapp/static/kiln/theme.js, loaded on every page).
  function themed(layout) {
    return window.KilnTheme ? window.KilnTheme.themed(layout) : layout;
  }

  window.KilnDash = { PALETTE, esc, color, runLabel, isNumber, parcoordsTrace, download, themed };
})();
