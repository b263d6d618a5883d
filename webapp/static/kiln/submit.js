// The submit form shows the recipe's config or the code inputs, following the "What to run" choice.
(function () {
  "use strict";
  var form = document.getElementById("submit-form");
  if (!form) return;
  function sync() {
    var chosen = form.querySelector("input[name=mode]:checked");
    var mode = chosen ? chosen.value : "recipe";
    form.querySelectorAll("[data-mode]").forEach(function (section) {
      section.hidden = section.dataset.mode !== mode;
    });
  }
  form.querySelectorAll("input[name=mode]").forEach(function (radio) { radio.addEventListener("change", sync); });
  sync();
})();
