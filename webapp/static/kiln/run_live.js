// The run page's live view: one Plotly chart per metric key and the log tail, kept current by
// polling two small JSON feeds (new points after the last step per key, lines after the last
// seq) every couple of seconds, without reloading. Polling stops once the run is final.
(function () {
  "use strict";
  var live = JSON.parse(document.getElementById("run-live").textContent);
  var chartsBox = document.getElementById("charts");
  var systemBox = document.getElementById("system-charts");  // sys/* series: against wall time
  var SYSTEM_PREFIX = "sys/";
  var logBox = document.getElementById("log");
  var note = document.getElementById("live-note");
  var MAX_LOG_LINES = 5000;
  var charts = {};  // key -> {div, lastStep}
  var lastSeq = null;
  var failures = 0;
  var clock = null;  // {started, finished, offset}: seconds since the epoch, offset = server clock - ours
  var K = window.KilnDash;  // dashboards/common.js: the chart rules every page shares
  var RUN_COLOUR = K ? K.runColor({id: live.run_id}) : "#c2410c";  // the run's colour on every page

  var LAYOUT = {
    margin: {l: 50, r: 16, t: 34, b: 36},
    height: 260,
    font: {family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#1d2330"},
    xaxis: {title: {text: "step"}, zeroline: false, gridcolor: "#eef0f3"},
    yaxis: {zeroline: false, gridcolor: "#eef0f3", automargin: true},
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
    showlegend: false,
  };

  function isSystem(key) {
    return key.lastIndexOf(SYSTEM_PREFIX, 0) === 0;
  }

  // A system series' x values: its points' wall times (seconds since the epoch) as dates.
  function xValues(key, points) {
    if (!isSystem(key)) return points.steps;
    return (points.wall_times || []).map(function (seconds) { return new Date(seconds * 1000); });
  }

  // A constant series gets a range around its value, not Plotly's ±1 (KilnDash.yRange); re-checked as points arrive.
  function yAxis(values) {
    return K ? K.yRange([values], false) : {autorange: true};
  }

  function fitY(chart) {
    var axis = yAxis(chart.y), seen = JSON.stringify(axis);
    if (seen === chart.yAxis) return;
    chart.yAxis = seen;
    Plotly.relayout(chart.div, axis.autorange ? {"yaxis.autorange": true} : {"yaxis.autorange": false, "yaxis.range": axis.range});
  }

  var smoothing = 0;  // the #smoothing slider: KilnDash.smooth's weight, for every chart on the page

  // A chart's traces: its points in the run's colour, or when smoothing, the smoothed line over them faded.
  function traces(chart) {
    // new arrays each time: Plotly.react redraws only data it sees change
    var line = {x: chart.x.slice(), y: chart.y.slice(), type: "scatter", mode: "lines", line: {color: RUN_COLOUR, width: 2}, name: chart.key};
    if (!smoothing || !K) return [line];
    var smoothed = Object.assign({}, line, {y: K.smooth(chart.x, chart.y, smoothing, K.xSpan([chart.x])), uid: "smoothed"});
    return [Object.assign({}, line, {uid: "raw", opacity: K.RAW_OPACITY, hoverinfo: "skip", line: {color: RUN_COLOUR, width: 1}}), smoothed];
  }

  function redraw(chart) {
    Plotly.react(chart.div, traces(chart), chart.div.layout);
  }

  var slider = document.getElementById("smoothing");
  if (slider) {
    slider.addEventListener("input", function () {
      smoothing = Number(slider.value);
      document.getElementById("smoothing-value").textContent = slider.value;
      Object.keys(charts).forEach(function (key) { redraw(charts[key]); });
    });
  }

  function addSeries(series) {
    Object.keys(series).sort().forEach(function (key) {
      var points = series[key];
      if (!points.steps.length) return;
      var chart = charts[key];
      var x = xValues(key, points);
      if (!chart) {
        var div = document.createElement("div");
        div.className = "chart";
        div.dataset.metricKey = key;
        var system = isSystem(key);
        insertSorted(system ? systemBox : chartsBox, div, key);
        var axis = yAxis(points.values);
        var layout = Object.assign({}, LAYOUT, {title: {text: system ? key.slice(SYSTEM_PREFIX.length) : key, font: {size: 14}},
          yaxis: Object.assign({}, LAYOUT.yaxis, axis)});
        if (system) layout.xaxis = Object.assign({}, LAYOUT.xaxis, {type: "date", title: {text: ""}});  // the ticks read as times
        chart = charts[key] = {key: key, div: div, x: x.slice(), y: points.values.slice(),
          lastStep: points.steps[points.steps.length - 1], yAxis: JSON.stringify(axis)};
        Plotly.newPlot(div, traces(chart), window.KilnTheme ? window.KilnTheme.themed(layout) : layout,
          {displaylogo: false, responsive: true});
      } else {
        Array.prototype.push.apply(chart.x, x);
        Array.prototype.push.apply(chart.y, points.values);
        chart.lastStep = points.steps[points.steps.length - 1];
        redraw(chart);
        fitY(chart);
      }
      chart.div.dataset.points = String(chart.x.length);
    });
    var keys = Object.keys(charts);
    document.getElementById("no-metrics").hidden = keys.some(function (key) { return !isSystem(key); });
    document.getElementById("no-system").hidden = keys.some(isSystem);
  }

  function insertSorted(box, div, key) {
    var before = Array.prototype.find.call(box.children, function (other) { return other.dataset.metricKey > key; });
    box.insertBefore(div, before || null);
  }

  function addLines(lines) {
    if (!lines.length) return;
    var atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
    var fragment = document.createDocumentFragment();
    lines.forEach(function (line) {
      var row = document.createElement("span");
      row.className = "log-line" + (line.stream === "stderr" ? " stderr" : "");
      row.dataset.seq = line.seq;
      row.textContent = line.text + "\n";
      fragment.appendChild(row);
      lastSeq = line.seq;
    });
    logBox.appendChild(fragment);
    while (logBox.childElementCount > MAX_LOG_LINES) logBox.removeChild(logBox.firstElementChild);
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
    document.getElementById("no-logs").hidden = true;
  }

  function showStatus(status) {
    var badge = document.getElementById("run-state");
    if (badge.dataset.state !== status.state) {
      badge.className = "pill state-" + status.state;
      badge.textContent = status.label;
      badge.dataset.state = status.state;
    }
    var pending = document.getElementById("run-pending");
    pending.hidden = !status.pending_reason;
    pending.querySelector("span").textContent = status.pending_reason;
    var attempt = document.getElementById("run-attempt");
    attempt.textContent = attempt.textContent.replace(/^\d+/, String(status.attempt));
    setText("run-progress", status.progress.text || "\u2013");
    showProgressBar(status.progress.bar);
    clock = {started: status.started_ts, finished: status.finished_ts, offset: status.now_ts - Date.now() / 1000};
    tick();
    setText("run-started", status.started_at);
    setText("run-finished", status.finished_at);
    if (status.worker) setText("run-worker", status.worker);
    if (status.events) showTimeline(status.events);
    if (status.final) {
      var cancel = document.getElementById("cancel-form");
      if (cancel) cancel.hidden = true;
    }
  }

  // The server says what fills the bar (step of total, else epoch of epochs); without a total there is none.
  function showProgressBar(shown) {
    var bar = document.getElementById("run-progress-bar");
    if (!bar) return;
    bar.hidden = !shown;
    if (shown) {
      bar.max = shown.max;
      bar.value = shown.value;
    }
  }

  // The duration counts up every second while the run runs, on the server's clock; it stops once finished.
  function tick() {
    if (!clock || clock.started === null || clock.started === undefined) return;
    var end = clock.finished !== null && clock.finished !== undefined ? clock.finished : Date.now() / 1000 + clock.offset;
    setText("run-duration", duration(Math.max(0, end - clock.started)));
  }

  function showArtifacts(rows) {
    var table = document.getElementById("artifact-table");
    var body = table.querySelector("tbody");
    var ids = rows.map(function (row) { return row.id; }).join(",");
    if (body.dataset.ids === ids) return;
    body.dataset.ids = ids;
    body.textContent = "";
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      [row.name, row.kind, row.step === null ? "\u2013" : String(row.step), fileSize(row.size)].forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 0) {
          var code = document.createElement("code");
          code.textContent = text;
          td.appendChild(code);
        } else {
          td.textContent = text;
        }
        if (i >= 2) td.className = "num";
        tr.appendChild(td);
      });
      var sha = document.createElement("td"), shaCode = document.createElement("code");
      shaCode.className = "small";
      shaCode.title = row.sha256;
      shaCode.textContent = row.sha256.slice(0, 12) + "\u2026";
      sha.appendChild(shaCode);
      tr.appendChild(sha);
      var link = document.createElement("td"), a = document.createElement("a");
      a.href = row.url;
      a.setAttribute("download", "");
      a.textContent = "Download";
      link.appendChild(a);
      tr.appendChild(link);
      body.appendChild(tr);
    });
    body.dataset.count = String(rows.length);
    table.hidden = !rows.length;
    document.getElementById("no-artifacts").hidden = rows.length > 0;
  }

  function fileSize(size) {
    var units = ["B", "KB", "MB", "GB"];
    for (var i = 0; i < units.length; i++) {
      if (size < 1024 || i === units.length - 1) return i === 0 ? size.toFixed(0) + " B" : size.toFixed(1) + " " + units[i];
      size /= 1024;
    }
  }

  function duration(total) {
    total = Math.floor(total);
    var hours = Math.floor(total / 3600), minutes = Math.floor((total % 3600) / 60), secs = total % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (hours) return hours + "h " + pad(minutes) + "m";
    if (minutes) return minutes + "m " + pad(secs) + "s";
    return secs + "s";
  }

  function setText(id, text) {
    var element = document.getElementById(id);
    if (element && text && element.textContent !== text) element.textContent = text;
  }

  function showTimeline(events) {
    var list = document.getElementById("timeline");
    if (Number(list.dataset.count) === events.length) return;
    list.textContent = "";
    events.forEach(function (event) {
      var item = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "pill state-" + event.state;
      badge.textContent = event.label;
      var when = document.createElement("span");
      when.className = "muted small";
      when.textContent = " " + event.at + (event.attempt ? " · attempt " + event.attempt : "");
      item.append(badge, when);
      if (event.reason) {
        var reason = document.createElement("div");
        reason.className = "small";
        reason.textContent = event.reason;
        item.appendChild(reason);
      }
      list.appendChild(item);
    });
    list.dataset.count = String(events.length);
  }

  function metricsUrl() {
    var params = new URLSearchParams();
    Object.keys(charts).forEach(function (key) { params.append("since", key + ":" + charts[key].lastStep); });
    var query = params.toString();
    return live.metrics_url + (query ? "?" + query : "");
  }

  function logsUrl() {
    return live.logs_url + (lastSeq === null ? "" : "?after=" + lastSeq);
  }

  function getJson(url) {
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"}).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + url);
      return response.json();
    });
  }

  function poll() {
    Promise.all([getJson(metricsUrl()), getJson(logsUrl())]).then(function (answers) {
      failures = 0;
      addSeries(answers[0].series);
      addLines(answers[1].lines);
      showStatus(answers[1].status);  // the logs feed's status also carries the timeline
      showArtifacts(answers[1].artifacts);
      // Each feed reads the state before its data, so a final state arrives with the last points.
      if (answers[0].status.final && answers[1].status.final) {
        stop("Run finished; live updates stopped.");
      } else {
        note.textContent = "Live: updating every " + live.interval_ms / 1000 + " s";
        setTimeout(poll, live.interval_ms);
      }
    }).catch(function () {
      failures += 1;
      note.textContent = "Connection lost; retrying…";
      setTimeout(poll, Math.min(live.interval_ms * Math.pow(2, failures), 30000));
    });
  }

  function stop(message) {
    note.textContent = message;
    document.body.dataset.liveStopped = "true";
  }

  addSeries(live.series);
  addLines(live.logs);
  showStatus(live.status);
  document.getElementById("artifact-table").querySelector("tbody").dataset.ids =
    live.artifacts.map(function (row) { return row.id; }).join(",");
  setInterval(tick, 1000);
  logBox.scrollTop = logBox.scrollHeight;
  if (live.status.final) {
    stop("");
  } else {
    note.textContent = "Live: updating every " + live.interval_ms / 1000 + " s";
    setTimeout(poll, live.interval_ms);
  }
})();
