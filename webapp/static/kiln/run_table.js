// Run table: select runs (all on the page at once) and open the compare page with them.
(function () {
  "use strict";
  var table = document.getElementById("run-table");
  if (!table) return;
  var all = document.getElementById("select-all");
  var boxes = table.querySelectorAll(".run-select");
  var compare = document.getElementById("compare-form");

  function selected() {
    return Array.prototype.filter.call(boxes, function (box) { return box.checked; }).map(function (box) { return box.value; });
  }
  function sync() {
    var ids = selected();
    if (all) {
      all.checked = ids.length === boxes.length && boxes.length > 0;
      all.indeterminate = ids.length > 0 && ids.length < boxes.length;
    }
    if (compare) {
      compare.querySelector("input[name=runs]").value = ids.join(",");
      compare.querySelector("button").disabled = ids.length < 2;
    }
  }
  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      sync();
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", sync); });
  sync();
})();
