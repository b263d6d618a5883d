/* The sweep page: parallel coordinates over the sweep's params and the objective, best so far, parameter
 * importance, kept live while the sweep runs: the page polls its JSON feed with the version it shows
 * (If-None-Match: an unchanged sweep answers 304 with no body), redraws the charts and swaps in the
 * status, rungs and trials tables the server rendered. Polling stops once the sweep is over. */
(function () {
  "use strict";

  const K = window.KilnDash;
  const Plotly = window.Plotly;
  const first = JSON.parse(document.getElementById("sweep-config").textContent);
  first.progress = JSON.parse(document.getElementById("sweep-progress").textContent);
  const plotConfig = { responsive: true, displaylogo: false };
  const note = document.getElementById("live-note");
  let version = first.version;
  let controls = first.controls.join(",");
  let failures = 0;

  function show(id, on) {
    document.getElementById(id).hidden = !on;
    document.getElementById(id + "-empty").hidden = on;
  }

  function drawParcoords(data) {
    if (!data.runs.length) return null;
    const objective = data.best ? { key: data.best, agg: data.mode } : null;
    const trace = K.parcoordsTrace(data.runs, data.params, objective ? [objective] : [], objective);
    const div = document.getElementById("parcoords");
    const before = div.data && div.data[0] ? div.data[0].dimensions : [];
    trace.dimensions.forEach((dimension, i) => {  // a range the user brushed stays brushed across updates
      if (before[i] && before[i].label === dimension.label && before[i].constraintrange) {
        dimension.constraintrange = before[i].constraintrange;
      }
    });
    return Plotly.react("parcoords", [trace], K.themed({ height: 440, margin: { l: 70, r: 70, t: 60, b: 30 } }), plotConfig);
  }

  function drawProgress(data) {
    const progress = data.progress;
    show("best-so-far", progress.length > 0);
    if (!progress.length) return null;
    const names = new Map(data.runs.map((run) => [run.id, K.esc(K.runLabel(run))]));
    const label = K.esc(data.best);
    return Plotly.react("best-so-far", [
      {
        type: "scatter", mode: "markers", name: "run", x: progress.map((p) => p.number), y: progress.map((p) => p.value),
        text: progress.map((p) => names.get(p.run)), marker: { color: "#9ca3af", size: 8 }, meta: [label],
        hovertemplate: "<b>%{text}</b><br>%{meta[0]}: %{y:.6g}<extra></extra>",
      },
      {
        type: "scatter", mode: "lines", name: "best so far", x: progress.map((p) => p.number), y: progress.map((p) => p.best),
        line: { shape: "hv", color: "#c2410c", width: 2.5 }, meta: [label],
        hovertemplate: "best up to run #%{x}<br>%{meta[0]}: %{y:.6g}<extra></extra>",
      },
    ], K.themed({
      height: 360, margin: { l: 60, r: 20, t: 20, b: 50 },
      xaxis: { title: { text: "run # (the order the search made them)" }, dtick: progress.length > 20 ? undefined : 1 },
      yaxis: { title: { text: label + " (" + data.mode + ")" } },
    }), plotConfig);
  }

  function drawImportance(data) {
    const importance = Object.entries(data.importance || {});
    show("importance", importance.length > 0);
    if (!importance.length) return null;
    importance.sort((a, b) => a[1] - b[1]);
    // Horizontal bars drawn as thick line segments from 0 (the gl2d bundle the pages load has no bar trace).
    const names = importance.map((e) => K.esc(e[0]));
    return Plotly.react("importance", [{
      type: "scatter", mode: "lines", hoverinfo: "skip", showlegend: false, line: { color: "#c2410c", width: 18 },
      x: importance.flatMap((e) => [0, e[1], null]), y: names.flatMap((name) => [name, name, null]),
    }, {
      type: "scatter", mode: "markers", showlegend: false, x: importance.map((e) => e[1]), y: names,
      marker: { color: "#c2410c", size: 1 }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
    }], K.themed({
      height: 60 + 28 * importance.length, margin: { l: 140, r: 20, t: 10, b: 40 },
      xaxis: { title: { text: "importance (PED-ANOVA)" }, rangemode: "tozero" }, hovermode: "y",
    }), plotConfig);
  }

  function draw(data) {
    return Promise.all([drawParcoords(data), drawProgress(data), drawImportance(data)]);
  }

  // New metric keys join the objective menu; the one the user picked stays picked.
  function showKeys(keys) {
    const select = document.getElementById("best-key");
    const have = Array.from(select.options, (option) => option.value);
    if (have.join("\n") === keys.join("\n")) return;
    const picked = select.value || first.best;
    select.replaceChildren(...keys.map((key) => new Option(key, key, false, key === picked)));
  }

  function update(data) {
    Object.entries(data.html).forEach(([id, markup]) => {
      // the controls form is kept while its actions stay the same: a half-typed max runs survives
      if (id === "sweep-controls-box" && data.controls.join(",") === controls) return;
      const box = document.getElementById(id);
      if (box) box.innerHTML = markup;
    });
    controls = data.controls.join(",");
    document.getElementById("run-count").textContent = data.runs.length + " run" + (data.runs.length === 1 ? "" : "s");
    showKeys(data.keys);
    return draw(data);
  }

  function poll() {
    const headers = { Accept: "application/json", "If-None-Match": '"' + version + '"' };
    fetch(first.data_url, { headers: headers, credentials: "same-origin" }).then((response) => {
      if (response.status === 304) return null;
      if (!response.ok) throw new Error(response.status + " " + first.data_url);
      return response.json();
    }).then((data) => {
      failures = 0;
      if (data === null) return false;
      version = data.version;
      document.body.dataset.liveVersion = version;
      return update(data).then(() => data.final);
    }).then((final) => {
      if (final) {
        stop("Sweep over; live updates stopped.");
      } else {
        note.textContent = "· live, every " + first.interval_ms / 1000 + " s";
        setTimeout(poll, first.interval_ms);
      }
    }).catch(() => {
      failures += 1;
      note.textContent = "· connection lost; retrying…";
      setTimeout(poll, Math.min(first.interval_ms * Math.pow(2, failures), 30000));
    });
  }

  function stop(message) {
    note.textContent = message ? "· " + message : "";
    document.body.dataset.liveStopped = "true";
  }

  draw(first).then(() => {
    document.body.dataset.chartsReady = "1";
  });
  if (first.final) {
    stop("");
  } else {
    note.textContent = "· live, every " + first.interval_ms / 1000 + " s";
    setTimeout(poll, first.interval_ms);
  }
})();
