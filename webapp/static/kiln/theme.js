// The colour theme and the small-screen menu, on every page. Loaded (not deferred) in <head>, so the
// theme is set on <html> before the first paint: the choice ("light", "dark" or "system") lives in
// localStorage under "kiln-theme"; "system" follows prefers-color-scheme, live. Charts take their
// colours from the page's CSS variables through KilnTheme.plotLayout() and are re-themed on a change.
(function () {
  "use strict";
  var KEY = "kiln-theme";
  var CHOICES = ["light", "dark", "system"];
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var listeners = [];

  function choice() {
    var stored = null;
    try { stored = window.localStorage.getItem(KEY); } catch (error) { stored = null; }
    return CHOICES.indexOf(stored) >= 0 ? stored : "system";
  }

  function resolved(which) {
    if (which === "light" || which === "dark") return which;
    return media && media.matches ? "dark" : "light";
  }

  function cssVar(name) {
    return getComputedStyle(root).getPropertyValue(name).trim();
  }

  // The Plotly layout keys that carry colour, read from the CSS variables of the theme in force.
  function plotLayout() {
    var fg = cssVar("--fg"), grid = cssVar("--grid"), card = cssVar("--card"), line = cssVar("--line");
    var axis = {color: fg, gridcolor: grid, linecolor: line, zerolinecolor: line};
    return {
      paper_bgcolor: card, plot_bgcolor: card, font: {color: fg},
      xaxis: axis, yaxis: Object.assign({}, axis), legend: {bgcolor: "rgba(0,0,0,0)", font: {color: fg}},
      hoverlabel: {bgcolor: card, bordercolor: line, font: {color: fg}},
    };
  }

  // `layout` with the theme's colours merged in (one level deep: axes and fonts keep their other settings).
  function themed(layout) {
    var colours = plotLayout(), out = Object.assign({}, layout || {});
    Object.keys(colours).forEach(function (key) {
      var value = colours[key];
      out[key] = typeof value === "object" ? Object.assign({}, out[key] || {}, value) : value;
    });
    return out;
  }

  function rethemePlots() {
    if (!window.Plotly) return;
    var colours = plotLayout();
    document.querySelectorAll(".js-plotly-plot").forEach(function (div) {
      if (!div._fullLayout || div._fullLayout.paper_bgcolor === colours.paper_bgcolor) return;  // not drawn, or themed
      var update = {
        paper_bgcolor: colours.paper_bgcolor, plot_bgcolor: colours.plot_bgcolor, "font.color": colours.font.color,
        "legend.font.color": colours.font.color, "hoverlabel.bgcolor": colours.hoverlabel.bgcolor,
        "hoverlabel.font.color": colours.font.color, "hoverlabel.bordercolor": colours.hoverlabel.bordercolor,
      };
      Object.keys(div._fullLayout || {}).forEach(function (key) {
        if (!/^[xy]axis\d*$/.test(key)) return;
        ["color", "gridcolor", "linecolor", "zerolinecolor"].forEach(function (part) {
          update[key + "." + part] = colours.xaxis[part];
        });
      });
      window.Plotly.relayout(div, update);
    });
  }

  function apply() {
    var which = choice();
    root.dataset.theme = resolved(which);
    root.dataset.themeChoice = which;
    var select = document.getElementById("theme-choice");
    if (select) select.value = which;
    rethemePlots();
    listeners.forEach(function (listener) { listener(root.dataset.theme); });
  }

  function set(which) {
    if (CHOICES.indexOf(which) < 0) throw new Error("theme must be one of " + CHOICES.join(", ") + ", not " + which);
    try { window.localStorage.setItem(KEY, which); } catch (error) { /* private mode: this page only */ }
    apply();
  }

  function onChange(listener) { listeners.push(listener); }

  apply();
  if (media) {
    var follow = function () { if (choice() === "system") apply(); };
    if (media.addEventListener) media.addEventListener("change", follow);
    else if (media.addListener) media.addListener(follow);
  }
  window.addEventListener("storage", function (event) { if (event.key === KEY) apply(); });  // other tabs

  // Delegated from the document: these work from the first paint, before the body is parsed.
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "theme-choice") set(event.target.value);
  });
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("#nav-toggle") : null;
    if (!button) return;
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    document.querySelector(".topbar").classList.toggle("open", open);
  });
  // Charts drawn before their script knew of the theme take it once the page has loaded.
  window.addEventListener("load", function () { setTimeout(rethemePlots, 0); });
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("theme-choice");
    if (select) select.value = choice();
    // A chart added later (a live run's new metric) takes the theme once drawn, whoever drew it.
    if (window.MutationObserver) {
      var observer = new MutationObserver(function () { setTimeout(rethemePlots, 0); });
      document.querySelectorAll(".charts").forEach(function (box) { observer.observe(box, {childList: true}); });
    }
  });

  window.KilnTheme = {choice: choice, current: function () { return resolved(choice()); }, set: set,
    plotLayout: plotLayout, themed: themed, onChange: onChange, retheme: rethemePlots};
})();
