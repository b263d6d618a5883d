/* The compare page: one chart per metric key, fed by the data endpoint (downsampled on the server).
 *
 * Everything the user sets lives in `state` and in the URL (history.replaceState), so a copied URL
 * or a saved dashboard reproduces the view. Smoothing, grouping, log scale and the best-run
 * highlight are drawn here from the loaded points; the x-axis choice, zooming (a step range at full
 * resolution) and live updates ask the server again.
 */
(function () {
  "use strict";

  const K = window.KilnDash;
  // NOTE: this script runs before plotly.js is parsed, so the data requests overlap that work.
  const plotlyReady = new Promise((resolve) => {
    if (document.readyState !== "loading") resolve();
    else document.addEventListener("DOMContentLoaded", resolve);
  });
  let Plotly = null;
  const config = JSON.parse(document.getElementById("compare-config").textContent);
  const runs = config.runs;
  const state = Object.assign(
    { runs: [], sweep: null, keys: [], x: "step", smooth: 0, log: false, group: "", best: "", mode: "min", sx: "", sy: "", hide: [] },
    config.state,
  );
  const charts = new Map(); // key -> {div, data: Map(runId -> points), zoom: Map | null, pending}
  const POLL_MS = 5000;
  const GL_POINTS = 20000; // past this many points a chart draws WebGL traces (scattergl): SVG slows down
  const PLOT_CONFIG = {
    responsive: true,
    displaylogo: false,
    toImageButtonOptions: { format: "png", scale: 2 },
  };
  let polling = null;
  const timings = {}; // when the data arrived and plotly.js was ready (ms since navigation), for benchmarks
  let finished = runs.every((run) => run.final);

  // --- state and URL ---------------------------------------------------------------------------

  function stateQuery() {
    const query = new URLSearchParams();
    if (state.runs.length) query.set("runs", state.runs.join(","));
    if (state.sweep) query.set("sweep", String(state.sweep));
    for (const key of state.keys) query.append("key", key);
    query.set("x", state.x);
    if (state.smooth) query.set("smooth", String(state.smooth));
    if (state.log) query.set("log", "1");
    for (const name of ["group", "best", "sx", "sy"]) if (state[name]) query.set(name, state[name]);
    if (state.best) query.set("mode", state.mode);
    for (const entry of state.hide) query.append("hide", entry);
    return query;
  }

  function syncUrl() {
    const query = stateQuery().toString();
    history.replaceState(null, "", config.urls.page + "?" + query);
    const saved = document.getElementById("dashboard-state");
    if (saved) saved.value = query;
    document.getElementById("csv-link").href = config.urls.csv + "?" + query;
  }

  function shownKeys() {
    return state.keys.length ? state.keys : config.keys;
  }

  function status(text) {
    document.getElementById("status").textContent = text;
  }

  // --- data ---------------------------------------------------------------------------------------

  // One request for any number of keys: the page's first look asks for every chart at once.
  async function fetchSeries(keys, extra) {
    const query = stateQuery();
    query.delete("key");
    query.delete("hide"); // drawn here: the same points either way
    for (const key of keys) query.append("key", key);
    for (const [name, value] of Object.entries(extra || {})) query.set(name, value);
    const response = await fetch(config.urls.data + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : "HTTP " + response.status);
    return body;
  }

  // Steps come as differences (payload.py); keep absolute times (seconds) so live batches with their own t0 line up.
  function toPoints(series) {
    const step = new Array(series.dstep.length);
    let at = 0;
    for (let i = 0; i < step.length; i++) step[i] = at += series.dstep[i];
    const points = { step: step, y: series.y, sampled: series.sampled, raw: series.raw, time: null, x: null };
    if (series.t) points.time = series.t.map((t) => series.t0 + t);
    if (series.x) points.x = series.x;
    return points;
  }

  function byRun(body, key) {
    const map = new Map();
    for (const series of body.series) if (series.key === key) map.set(series.run, toPoints(series));
    return map;
  }

  function append(points, more) {
    const last = points.step.length ? points.step[points.step.length - 1] : -Infinity;
    for (let i = 0; i < more.step.length; i++) {
      if (more.step[i] <= last) continue;
      points.step.push(more.step[i]);
      points.y.push(more.y[i]);
      if (points.time && more.time) points.time.push(more.time[i]);
      if (points.x && more.x) points.x.push(more.x[i]);
    }
  }

  // --- drawing ------------------------------------------------------------------------------------

  // Legend entries (legendgroups) switched off in the shared legend; kept in the URL (`hide`), so a link
  // shows what its sender saw. Only names the server's state takes (webapp/dashboards/state.py) go there.
  const LEGEND_ENTRY = /^(run-[1-9][0-9]{0,18}|group-[^\x00-\x1f]{0,200})$/;
  const hidden = new Set(state.hide);

  function hiddenChanged() {
    state.hide = Array.from(hidden).filter((entry) => LEGEND_ENTRY.test(entry));
    syncUrl();
    drawAll();
  }

  function runStart(chart, runId) {
    const points = chart.data.get(runId);
    return points && points.time && points.time.length ? points.time[0] : 0;
  }

  function xValues(chart, runId, points) {
    if (state.x === "wall") return points.time ? points.time.map((t) => t * 1000) : [];
    if (state.x === "rel") {
      const start = runStart(chart, runId);
      return points.time ? points.time.map((t) => t - start) : [];
    }
    if (state.x.startsWith("metric:")) return points.x || [];
    return points.step;
  }

  function xTitle() {
    if (state.x === "wall") return "wall time";
    if (state.x === "rel") return "relative time (s)";
    if (state.x.startsWith("metric:")) return state.x.slice(7);
    return "step";
  }

  function bestRunId() {
    if (!state.best) return null;
    let best = null;
    let bestValue = null;
    for (const run of runs) {
      const summary = run.summary[state.best];
      const value = summary ? summary[state.mode] : null;
      if (!K.isNumber(value)) continue;
      if (bestValue === null || (state.mode === "min" ? value < bestValue : value > bestValue)) {
        best = run.id;
        bestValue = value;
      }
    }
    return best;
  }

  const differingParams = (function () {
    const names = new Set();
    for (const run of runs) for (const name of Object.keys(run.params)) names.add(name);
    const differs = Array.from(names).filter((name) => new Set(runs.map((run) => JSON.stringify(run.params[name]))).size > 1);
    return (differs.length ? differs : Array.from(names)).sort();
  })();

  function paramsText(run) {
    return differingParams
      .slice(0, 8)
      .map((name) => K.esc(name) + "=" + K.esc(run.params[name] === undefined ? "" : run.params[name]))
      .join("<br>");
  }

  let webgl = null;
  function canWebGL() {
    if (webgl === null) {
      try {
        webgl = Boolean(document.createElement("canvas").getContext("webgl"));
      } catch (error) {
        webgl = false;
      }
    }
    return webgl;
  }

  function groupOf(run) {
    const value = run.params[state.group];
    return value === undefined || value === null ? "(none)" : String(value);
  }

  function groupNames() {
    return Array.from(new Set(runs.map(groupOf))).sort();
  }

  // Per run: its curve (smoothed when smoothing is on, over the raw one drawn faded), in the run's colour.
  function runTraces(chart, key, source, best) {
    const traces = [];
    const grouped = Boolean(state.group);
    const groups = grouped ? groupNames() : [];
    let total = 0;
    for (const points of source.values()) total += points.step.length;
    const type = total > GL_POINTS && canWebGL() ? "scattergl" : "scatter";
    const xs = new Map();
    for (const run of runs) {
      const points = source.get(run.id);
      if (points && points.step.length) xs.set(run.id, xValues(chart, run.id, points));
    }
    const span = K.xSpan(xs.values());
    for (const run of runs) {
      if (!xs.has(run.id)) continue;
      const points = source.get(run.id);
      const isBest = best === run.id;
      const colour = grouped ? K.color(groups.indexOf(groupOf(run))) : K.runColor(run);
      const opacity = best !== null && !isBest ? 0.5 : 1;
      const visible = grouped ? "legendonly" : !hidden.has("run-" + run.id);
      const mode = points.step.length === 1 ? "markers" : "lines";
      if (state.smooth && !grouped) {
        traces.push({
          type: type, mode: mode, uid: "raw-" + run.id, legendgroup: "run-" + run.id, showlegend: false,
          x: xs.get(run.id), y: points.y, line: { color: colour, width: 1 }, opacity: K.RAW_OPACITY * opacity,
          visible: visible, hoverinfo: "skip",
        });
      }
      traces.push({
        type: type,
        mode: mode,
        uid: "run-" + run.id,
        name: (isBest ? "★ " : "") + K.esc(K.runLabel(run)),
        legendgroup: "run-" + run.id,
        x: xs.get(run.id),
        y: K.smooth(xs.get(run.id), points.y, state.smooth, span),
        line: { color: colour, width: isBest ? 3 : 1.5 },
        opacity: opacity,
        visible: visible,
        meta: [paramsText(run), K.esc(key), K.esc(xTitle())],
        hovertemplate: "<b>%{fullData.name}</b><br>%{meta[2]}: %{x}<br>%{meta[1]}: %{y:.6g}<br>%{meta[0]}<extra></extra>",
      });
    }
    return traces;
  }

  // Per group: the mean curve and a min-max band, on a common x grid (runs count where they have data).
  function groupTraces(traces) {
    const members = new Map();
    const colours = new Map();
    for (const trace of traces) {
      const run = runs.find((r) => "run-" + r.id === trace.legendgroup);
      const group = groupOf(run);
      if (!members.has(group)) members.set(group, []);
      members.get(group).push(trace);
      colours.set(group, trace.line.color);
    }
    const out = [];
    for (const [group, list] of members) {
      const xs = new Set();
      for (const trace of list) for (const x of trace.x) if (Number.isFinite(x)) xs.add(x);
      let grid = Array.from(xs).sort((a, b) => a - b);
      if (grid.length > 600) grid = grid.filter((_, i) => i % Math.ceil(grid.length / 600) === 0);
      const low = [];
      const high = [];
      const mean = [];
      for (const x of grid) {
        let lo = Infinity;
        let hi = -Infinity;
        let sum = 0;
        let n = 0;
        for (const trace of list) {
          const y = interpolate(trace.x, trace.y, x);
          if (y === null) continue;
          lo = Math.min(lo, y);
          hi = Math.max(hi, y);
          sum += y;
          n += 1;
        }
        low.push(n ? lo : null);
        high.push(n ? hi : null);
        mean.push(n ? sum / n : null);
      }
      const colour = colours.get(group);
      const name = K.esc(state.group + "=" + group) + " (" + list.length + ")";
      const visible = !hidden.has("group-" + group);
      out.push({ type: "scatter", mode: "lines", x: grid, y: high, line: { width: 0, color: colour }, legendgroup: "group-" + group, showlegend: false, hoverinfo: "skip", visible: visible });
      out.push({
        type: "scatter", mode: "lines", x: grid, y: low, line: { width: 0, color: colour }, fill: "tonexty",
        fillcolor: colour + "33", legendgroup: "group-" + group, showlegend: false, hoverinfo: "skip", visible: visible,
      });
      out.push({
        type: "scatter", mode: "lines", x: grid, y: mean, name: name, legendgroup: "group-" + group,
        line: { width: 2.5, color: colour }, meta: [name], visible: visible,
        hovertemplate: "<b>%{meta[0]}</b><br>%{x}: mean %{y:.6g}<extra></extra>",
      });
    }
    return out;
  }

  function interpolate(xs, ys, x) {
    if (!xs.length || x < xs[0] || x > xs[xs.length - 1]) return null;
    let lo = 0;
    let hi = xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= x) lo = mid;
      else hi = mid;
    }
    if (xs[lo] === x || hi === lo) return ys[lo];
    const a = ys[lo];
    const b = ys[hi];
    if (a === null || b === null) return a === null ? b : a;
    return a + ((b - a) * (x - xs[lo])) / (xs[hi] - xs[lo]);
  }

  function layout(key, traces) {
    const shown = traces.filter((trace) => trace.visible === undefined || trace.visible === true);
    return K.themed({
      title: { text: K.esc(key), font: { size: 14 } },
      margin: { l: 55, r: 15, t: 40, b: 45 },
      height: 380,
      hovermode: "closest",
      uirevision: key + "|" + state.x + "|" + state.log,
      xaxis: { title: { text: K.esc(xTitle()) }, type: state.x === "wall" ? "date" : "linear" },
      yaxis: Object.assign({ type: state.log ? "log" : "linear", exponentformat: "power" }, K.yRange(shown.map((trace) => trace.y), state.log)),
      showlegend: false, // one legend for the view: #chart-legend
    });
  }

  // The view's one legend: a run per entry (a group when grouping), in the colours the charts use.
  function drawLegend() {
    const box = document.getElementById("chart-legend");
    if (!box) return;
    const best = bestRunId();
    let entries;
    if (state.group) {
      entries = groupNames().map((group, i) => ({
        id: "group-" + group,
        label: state.group + "=" + group + " (" + runs.filter((run) => groupOf(run) === group).length + ")",
        colour: K.color(i),
      }));
    } else {
      entries = runs.map((run) => ({ id: "run-" + run.id, label: (run.id === best ? "★ " : "") + K.runLabel(run), colour: K.runColor(run) }));
    }
    K.renderLegend(box, entries, hidden, hiddenChanged);
  }

  function chartTraces(key) {
    const chart = charts.get(key);
    const source = chart.zoom || chart.data;
    let traces = runTraces(chart, key, source, bestRunId());
    if (state.group) traces = groupTraces(traces).concat(traces);
    const note = chart.div.parentElement.querySelector(".note");
    const sampled = Array.from(source.values()).some((points) => points.sampled);
    note.textContent = sampled
      ? "Downsampled for drawing (peaks kept); zoom in for full resolution."
      : traces.length ? "" : "No points logged yet.";
    return traces;
  }

  function draw(key) {
    const chart = charts.get(key);
    if (!chart.plotted) return Promise.resolve();
    const traces = chartTraces(key);
    return Plotly.react(chart.div, traces, layout(key, traces), PLOT_CONFIG);
  }

  function drawAll() {
    return Promise.all(Array.from(charts.keys()).map(draw));
  }

  if (window.KilnTheme) {
    window.KilnTheme.onChange(() => {
      if (!Plotly) return;
      drawAll();
      drawParcoords();
      drawScatter();
    });
  }

  // --- charts ---------------------------------------------------------------------------------------

  function svgButton(key) {
    return {
      name: "Download as SVG",
      icon: Plotly.Icons.camera,
      click: (div) => K.download(div, "svg", key),
    };
  }

  function makeChart(key) {
    const box = document.createElement("div");
    box.className = "chart";
    const div = document.createElement("div");
    div.className = "plot";
    div.dataset.key = key;
    const note = document.createElement("div");
    note.className = "note";
    box.append(div, note);
    document.getElementById("charts").append(box);
    const chart = { div: div, data: new Map(), zoom: null, zoomSeq: 0, plotted: false };
    charts.set(key, chart);
    return chart;
  }

  async function plotChart(key) {
    const chart = charts.get(key);
    await plotlyReady;
    timings.plotly = timings.plotly || performance.now();
    Plotly = window.Plotly;
    chart.plotted = true;
    const traces = chartTraces(key);
    await Plotly.newPlot(chart.div, traces, layout(key, traces), Object.assign({ modeBarButtonsToAdd: [svgButton(key)] }, PLOT_CONFIG));
    chart.div.on("plotly_relayout", (event) => onZoom(key, event));
  }

  // The first look at very long runs comes in parts: the server reads what it can in bounded time.
  async function loadPending(keys, pending) {
    while (pending.length) {
      status("Reading " + pending.length + " more run" + (pending.length === 1 ? "" : "s") + "…");
      const body = await fetchSeries(keys, { runs: pending.join(","), sweep: "" });
      for (const series of body.series) {
        const chart = charts.get(series.key);
        if (chart) chart.data.set(series.run, toPoints(series));
      }
      pending = body.pending;
      await plotlyReady;
      await Promise.all(keys.map(draw));
    }
    status("");
  }

  async function onZoom(key, event) {
    const chart = charts.get(key);
    if (state.x !== "step") return;
    if (event["xaxis.autorange"]) {
      if (chart.zoom) {
        chart.zoom = null;
        draw(key);
      }
      return;
    }
    const from = event["xaxis.range[0]"];
    const to = event["xaxis.range[1]"];
    if (from === undefined || to === undefined) return;
    if (!Array.from(chart.data.values()).some((points) => points.sampled)) return;
    const seq = ++chart.zoomSeq;
    const body = await fetchSeries([key], { lo: String(Math.floor(from)), hi: String(Math.ceil(to)) });
    if (seq !== chart.zoomSeq) return; // a later zoom won
    chart.zoom = byRun(body, key);
    draw(key);
  }

  async function loadAll() {
    const started = performance.now();
    document.body.dataset.chartsReady = "0";
    status("Loading…");
    document.getElementById("charts").replaceChildren();
    charts.clear();
    drawLegend();
    const keys = shownKeys();
    try {
      if (keys.length) {
        for (const key of keys) makeChart(key);
        const body = await fetchSeries(keys);
        timings.data = performance.now();
        if (body.final) finished = true;
        for (const key of keys) charts.get(key).data = byRun(body, key);
        if (body.pending.length) loadPending(keys, body.pending);
        await Promise.all(keys.map(plotChart));
      }
      status(keys.length ? "" : "No metrics logged yet.");
    } catch (error) {
      status("Could not load the data: " + error.message);
    }
    window.kilnCompare = { drawnMs: performance.now() - started, drawnAt: performance.now(), charts: keys.length, timings: timings };
    document.body.dataset.chartsReady = "1";
    startPolling();
  }

  // --- live updates ---------------------------------------------------------------------------------

  function startPolling() {
    if (polling || finished) return;
    polling = setInterval(poll, POLL_MS);
  }

  async function poll() {
    if (document.hidden) return;
    let allFinal = true;
    for (const [key, chart] of charts) {
      const after = [];
      for (const [runId, points] of chart.data) if (points.step.length) after.push(runId + ":" + points.step[points.step.length - 1]);
      try {
        const body = await fetchSeries([key], { after: after.join(",") });
        for (const series of body.series) {
          const points = toPoints(series);
          const known = chart.data.get(series.run);
          if (known && after.some((item) => item.startsWith(series.run + ":"))) append(known, points);
          else chart.data.set(series.run, points);
        }
        allFinal = allFinal && body.final;
        draw(key);
      } catch (error) {
        status("Live update failed: " + error.message);
      }
    }
    if (allFinal) {
      clearInterval(polling);
      polling = null;
      finished = true;
      status("All runs have finished.");
    }
  }

  // --- parallel coordinates, scatter, summary table ---------------------------------------------------

  function drawParcoords() {
    const section = document.getElementById("parcoords-section");
    if (!section.open || !Plotly) return;
    const agg = (key) => (key === state.best ? state.mode : "last");
    const metrics = config.keys.slice(0, 12).map((key) => ({ key: key, agg: agg(key) }));
    const colorKey = state.best || (config.keys.length ? config.keys[0] : null);
    const trace = K.parcoordsTrace(runs, differingParams.slice(0, 12), metrics, colorKey ? { key: colorKey, agg: agg(colorKey) } : null);
    Plotly.react("parcoords", [trace], K.themed({ height: 440, margin: { l: 70, r: 70, t: 60, b: 30 } }), PLOT_CONFIG);
  }

  function drawScatter() {
    const section = document.getElementById("scatter-section");
    if (!section.open || !Plotly) return;
    const param = document.getElementById("scatter-x").value;
    const metric = document.getElementById("scatter-y").value;
    const best = bestRunId();
    const shown = runs.filter((run) => run.summary[metric] && K.isNumber(run.summary[metric].last));
    const trace = {
      type: "scatter",
      mode: "markers",
      x: shown.map((run) => run.params[param]),
      y: shown.map((run) => run.summary[metric].last),
      marker: {
        size: shown.map((run) => (run.id === best ? 14 : 9)),
        color: shown.map((run) => K.runColor(run)),
      },
      meta: [K.esc(param), K.esc(metric)],
      text: shown.map((run) => K.esc(K.runLabel(run))),
      hovertemplate: "<b>%{text}</b><br>%{meta[0]}: %{x}<br>%{meta[1]}: %{y:.6g}<extra></extra>",
    };
    Plotly.react("scatter", [trace], K.themed({
      height: 400,
      margin: { l: 60, r: 20, t: 20, b: 50 },
      xaxis: { title: { text: K.esc(param) } },
      yaxis: { title: { text: K.esc(metric) + " (last)" }, type: state.log ? "log" : "linear" },
    }), PLOT_CONFIG);
  }

  function buildSummary() {
    const table = document.getElementById("summary-table");
    const keys = shownKeys();
    const best = bestRunId();
    const head = document.createElement("tr");
    const columns = [{ label: "Run", value: (run) => run.number, text: (run) => K.runLabel(run) }, { label: "State", value: (run) => run.state, text: (run) => run.state_label }];
    for (const key of keys) {
      for (const agg of ["last", "min", "max"]) {
        columns.push({
          label: key + " " + agg,
          numeric: true,
          value: (run) => (run.summary[key] && K.isNumber(run.summary[key][agg]) ? run.summary[key][agg] : null),
        });
      }
    }
    columns.forEach((column, index) => {
      const th = document.createElement("th");
      th.textContent = column.label;
      th.scope = "col";
      th.addEventListener("click", () => sortBy(index));
      head.append(th);
    });
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const run of runs) {
      const row = document.createElement("tr");
      row.dataset.run = String(run.id);
      if (run.id === best) row.className = "best";
      columns.forEach((column) => {
        const td = document.createElement("td");
        const value = column.value(run);
        td.dataset.sort = value === null ? "" : String(value);
        if (column.numeric) {
          td.className = "num";
          td.textContent = value === null ? "–" : String(Number(Number(value).toPrecision(5)));
        } else if (column.text) {
          td.append(K.truncatedName(column.text(run)));
        } else {
          td.textContent = String(value);
        }
        row.append(td);
      });
      body.append(row);
    }

    function sortBy(index) {
      const th = head.children[index];
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.from(head.children).forEach((cell) => cell.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = columns[index].numeric || index === 0;
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = a.cells[index].dataset.sort;
        const y = b.cells[index].dataset.sort;
        if (x === "" || y === "") return x === y ? 0 : x === "" ? 1 : -1; // blanks last either way
        const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      body.append(...rows);
    }
  }

  // --- controls -------------------------------------------------------------------------------------

  function on(id, event, handler) {
    const element = document.getElementById(id);
    if (element) element.addEventListener(event, handler);
  }

  on("smoothing", "input", (event) => {
    state.smooth = Number(event.target.value);
    document.getElementById("smoothing-value").textContent = event.target.value;
    syncUrl();
    drawAll();
  });
  on("x-axis", "change", (event) => {
    state.x = event.target.value;
    syncUrl();
    loadAll();
  });
  on("log-scale", "change", (event) => {
    state.log = event.target.checked;
    syncUrl();
    drawAll();
    drawScatter();
  });
  on("group-by", "change", (event) => {
    state.group = event.target.value;
    hidden.clear();
    state.hide = [];
    syncUrl();
    drawLegend();
    drawAll();
  });
  for (const id of ["best-key", "best-mode"]) {
    on(id, "change", () => {
      state.best = document.getElementById("best-key").value;
      state.mode = document.getElementById("best-mode").value;
      syncUrl();
      drawLegend();
      drawAll();
      buildSummary();
      drawParcoords();
      drawScatter();
    });
  }
  on("key-picker", "change", () => {
    const boxes = Array.from(document.querySelectorAll("#key-picker input"));
    const checked = boxes.filter((box) => box.checked).map((box) => box.value);
    state.keys = checked.length === boxes.length ? [] : checked;
    syncUrl();
    buildSummary();
    loadAll();
  });
  on("diff-all", "change", (event) => {
    document.getElementById("config-diff").classList.toggle("show-all", event.target.checked);
  });
  on("parcoords-section", "toggle", drawParcoords);
  on("scatter-section", "toggle", drawScatter);
  for (const id of ["scatter-x", "scatter-y"]) {
    on(id, "change", () => {
      state.sx = document.getElementById("scatter-x").value;
      state.sy = document.getElementById("scatter-y").value;
      syncUrl();
      drawScatter();
    });
  }
  for (const format of ["png", "svg"]) {
    on(format + "-all", "click", () => {
      for (const [key, chart] of charts) K.download(chart.div, format, key);
    });
  }

  // The scatter opens on a param that differs between the runs (one that is the same says nothing).
  const scatterX = document.getElementById("scatter-x");
  if (scatterX && !state.sx) {
    const varying = Array.from(scatterX.options).find((option) => differingParams.includes(option.value));
    if (varying) scatterX.value = varying.value;
  }

  buildSummary();
  loadAll();
})();
