// The MLflow client prints links to its own UI ("View run at <tracking URI>/#/experiments/2/runs/6");
// pointed at Kiln they land on the home page with that fragment, which no server ever sees. Here they
// open the Kiln page they mean: an experiment is a project (its id), an MLflow run a Kiln run (its id).
(function () {
  "use strict";
  if (window.location.pathname !== "/") return;
  var match = /^#\/experiments\/(\d+)(?:\/runs\/(\d+))?/.exec(window.location.hash);
  if (!match) return;
  window.location.replace(match[2] ? "/runs/" + match[2] + "/" : "/p/" + match[1] + "/");
})();
