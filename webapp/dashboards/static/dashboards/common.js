/* Shared by the compare, sweep and run pages: escaping, run colours, smoothing, axis ranges, the
 * shared legend, parallel coordinates. One rule each, for every chart that draws runs. */
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

  // A run's colour follows from the run itself (its id), never from its place in a list, so the same
  // run has the same colour on every chart and page (consecutive runs get distinct colours).
  function runColor(run) {
    return PALETTE[Math.abs(Math.trunc(Number(run.id))) % PALETTE.length];
  }

  // The faded raw curve drawn under a smoothed one (W&B's convention).
  const RAW_OPACITY = 0.25;
  const SMOOTH_VIEWPORT = 1000; // the weight applies per 1/1000 of the chart's x range

  // W&B's time-weighted EMA (debiased): each point's decay is the weight raised to its x gap as a
  // share of the chart's x range, so dense and sparse series on one chart smooth alike and a series
  // logged every 100 steps is not dragged back by a point count. `param` in [0, 1).
  // A series that never turns back (an epoch or token counter, a decaying schedule, a constant) has no
  // noise to smooth away: any average of it only lags (an epoch counter would end below its last value),
  // so it is drawn as it is.
  function smooth(xs, ys, param, xRange) {
    if (!param || isMonotone(ys)) return ys;
    const weight = Math.min(Math.sqrt(param), 0.999);
    const span = xRange > 0 ? xRange : 1;
    const out = new Array(ys.length);
    let total = 0;
    let norm = 0;
    let lastX = null;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      const x = Number(xs[i]); // dates count in ms
      if (!isNumber(y) || !Number.isFinite(x)) {
        out[i] = y;
        continue;
      }
      const gap = lastX === null ? 0 : (Math.max(0, x - lastX) / span) * SMOOTH_VIEWPORT;
      const decay = Math.pow(weight, gap);
      total = total * decay + y;
      norm = norm * decay + 1;
      lastX = x;
      out[i] = total / norm;
    }
    return out;
  }

  // Whether the finite values of `ys` never rise or never fall (non-finite ones are gaps).
  function isMonotone(ys) {
    let rises = false;
    let falls = false;
    let last = null;
    for (const y of ys) {
      if (!isNumber(y)) continue;
      if (last !== null && y > last) rises = true;
      if (last !== null && y < last) falls = true;
      if (rises && falls) return false;
      last = y;
    }
    return true;
  }

  // The span of x over several series (numbers or dates), for smooth().
  function xSpan(seriesXs) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const xs of seriesXs) {
      for (const value of xs) {
        const x = Number(value);
        if (!Number.isFinite(x)) continue;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
    return hi > lo ? hi - lo : 0;
  }

  // Plotly's autorange spreads a constant series over value ± 1, so lr=0.003 reads as 0: a chart whose
  // values are all one number gets a range around that number (±10%, or ±1 around 0; a decade on a
  // log axis). The y axis settings for `seriesYs`: a fixed range when constant, autorange otherwise.
  function yRange(seriesYs, log) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const ys of seriesYs) {
      for (const y of ys) {
        if (!isNumber(y)) continue;
        if (y < lo) lo = y;
        if (y > hi) hi = y;
      }
    }
    // NOTE: rounding noise (0.0030000000000004 beside 0.003) still counts as constant.
    if (lo > hi || hi - lo > 1e-9 * Math.max(Math.abs(lo), Math.abs(hi))) return { autorange: true };
    const value = (lo + hi) / 2;
    if (log && value <= 0) return { autorange: true };
    if (log) return { autorange: false, range: [Math.log10(value) - 0.5, Math.log10(value) + 0.5] };
    const pad = value === 0 ? 1 : Math.abs(value) * 0.1;
    return { autorange: false, range: [value - pad, value + pad] };
  }

  // One legend for a whole view (the charts draw none): a button per entry with its colour and a name
  // cut short with an ellipsis (the full name on hover). Clicking one hides or shows that entry on
  // every chart; `onToggle(hiddenIds)` redraws. Entries: [{id, label, colour}].
  function renderLegend(box, entries, hidden, onToggle) {
    box.replaceChildren();
    box.hidden = entries.length < 2;
    for (const entry of entries) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "legend-entry";
      button.dataset.legendgroup = entry.id;
      button.title = entry.label;
      button.setAttribute("aria-pressed", hidden.has(entry.id) ? "false" : "true");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.colour;
      const name = document.createElement("span");
      name.className = "truncate";
      name.textContent = entry.label;
      button.append(swatch, name);
      button.addEventListener("click", () => {
        if (hidden.has(entry.id)) hidden.delete(entry.id);
        else hidden.add(entry.id);
        button.setAttribute("aria-pressed", hidden.has(entry.id) ? "false" : "true");
        onToggle(hidden);
      });
      box.append(button);
    }
  }

  // A run's name cut short in a table cell, the full name on hover.
  function truncatedName(text) {
    const span = document.createElement("span");
    span.className = "truncate";
    span.title = text;
    span.textContent = text;
    return span;
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

  window.KilnDash = {
    PALETTE, RAW_OPACITY, esc, color, runColor, runLabel, isNumber, smooth, xSpan, yRange, renderLegend, truncatedName,
    parcoordsTrace, download, themed,
  };
})();
