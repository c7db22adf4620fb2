// The console's only script: live regions fed by server-sent events, and confirmations.
"use strict";
document.querySelectorAll("[data-feed]").forEach(function (target) {
  var source = new EventSource(target.dataset.feed);
  source.addEventListener("rows", function (event) {
    target.innerHTML = event.data;
  });
});
document.addEventListener("submit", function (event) {
  var question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
