// A small syntax highlighter for Python and YAML, used two ways:
//  - .editor: a textarea over a <pre>; the textarea's text is transparent and the <pre>
//    behind it shows the same text highlighted, kept in step on every input and scroll;
//  - pre[data-highlight]: read-only code blocks (a run's code and config).
// Every token is HTML-escaped before it is wrapped in a span, so user text stays text.
(function () {
  "use strict";

  var PY_KEYWORDS = "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case".split(" ");
  var PY_BUILTINS = "abs all any bool dict enumerate filter float format getattr hasattr int isinstance len list map max min next object open print range repr reversed round set setattr slice sorted str sum super tuple type zip self cls".split(" ");

  var RULES = {
    python: new RegExp([
      "(?<comment>#[^\\n]*)",
      "(?<string>[rRbBuUfF]{0,2}(?:\"\"\"[\\s\\S]*?(?:\"\"\"|$)|'''[\\s\\S]*?(?:'''|$)|\"(?:\\\\.|[^\"\\\\\\n])*\"?|'(?:\\\\.|[^'\\\\\\n])*'?))",
      "(?<decorator>@[A-Za-z_][\\w.]*)",
      "(?<number>\\b(?:0[xXoObB][\\da-fA-F_]+|\\d[\\d_]*\\.?[\\d_]*(?:[eE][+-]?\\d+)?j?|\\.\\d[\\d_]*(?:[eE][+-]?\\d+)?)\\b)",
      "(?<word>\\b[A-Za-z_]\\w*\\b)",
    ].join("|"), "g"),
    yaml: new RegExp([
      "(?<comment>#[^\\n]*)",
      "(?<key>^[ \\t-]*[\\w.\\-\"']+(?=\\s*:(?:\\s|$)))",
      "(?<string>\"(?:\\\\.|[^\"\\\\\\n])*\"?|'[^'\\n]*'?)",
      "(?<number>(?<![\\w.])[-+]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+)(?![\\w.]))",
      "(?<literal>\\b(?:true|false|null|yes|no|True|False|None)\\b)",
    ].join("|"), "gm"),
  };

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function span(kind, text) {
    return '<span class="tok-' + kind + '">' + escapeHtml(text) + "</span>";
  }

  function highlight(text, language) {
    var rule = RULES[language];
    if (!rule) return escapeHtml(text);
    rule.lastIndex = 0;
    var out = "";
    var last = 0;
    var previousWord = "";
    var match;
    while ((match = rule.exec(text)) !== null) {
      if (match[0] === "") { rule.lastIndex++; continue; }
      out += escapeHtml(text.slice(last, match.index));
      var groups = match.groups;
      if (groups.word !== undefined) {
        var word = groups.word;
        if (PY_KEYWORDS.indexOf(word) >= 0) out += span("kw", word);
        else if (previousWord === "def" || previousWord === "class") out += span("def", word);
        else if (PY_BUILTINS.indexOf(word) >= 0) out += span("builtin", word);
        else out += escapeHtml(word);
        previousWord = word;
      } else {
        var kind = Object.keys(groups).find(function (name) { return groups[name] !== undefined; });
        out += span(kind, match[0]);
        previousWord = "";
      }
      last = match.index + match[0].length;
    }
    return out + escapeHtml(text.slice(last));
  }

  function attachEditor(editor) {
    var textarea = editor.querySelector("textarea");
    var view = editor.querySelector(".editor-view code");
    var pre = editor.querySelector(".editor-view");
    var language = editor.dataset.language;
    textarea.setAttribute("wrap", "off");
    function render() {
      // A trailing newline needs a character after it, or the <pre> ends one line short.
      view.innerHTML = highlight(textarea.value, language) + "\n ";
      pre.scrollTop = textarea.scrollTop;
      pre.scrollLeft = textarea.scrollLeft;
    }
    textarea.addEventListener("input", render);
    textarea.addEventListener("scroll", function () {
      pre.scrollTop = textarea.scrollTop;
      pre.scrollLeft = textarea.scrollLeft;
    });
    textarea.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
      event.preventDefault();
      var start = textarea.selectionStart;
      textarea.setRangeText("    ", start, textarea.selectionEnd, "end");
      render();
    });
    editor.classList.add("ready");
    render();
  }

  window.kilnHighlight = highlight;
  document.querySelectorAll(".editor").forEach(attachEditor);
  document.querySelectorAll("pre[data-highlight] code").forEach(function (code) {
    code.innerHTML = highlight(code.textContent, code.parentElement.dataset.highlight);
  });
})();
