/* The live view's one script of its own: a banner when the feed goes silent.
 * The server sends a "tick" fragment every second saying how old the view is (data-age,
 * seconds); if no tick comes for data-silent-s seconds the connection is gone or the
 * server is stuck, and the banner says how old the view has become since. */
(function () {
  "use strict";
  function lagAge() {
    var el = document.querySelector("#lag [data-age]");
    var v = el ? parseFloat(el.getAttribute("data-age")) : NaN;
    return isNaN(v) ? null : v;
  }
  // Deferred: the page is parsed; its own lag line says how old the view was when served.
  var heard = performance.now();
  var age = lagAge();
  document.addEventListener("htmx:sseMessage", function () {
    heard = performance.now();
    age = lagAge();
    var silent = document.getElementById("silent");
    if (silent && !silent.hidden) { silent.hidden = true; silent.textContent = ""; }
  });
  setInterval(function () {
    var live = document.getElementById("live");
    var silent = document.getElementById("silent");
    if (!live || !silent || !live.hasAttribute("sse-connect")) { return; }
    if (document.querySelector("#ended .verify")) { silent.hidden = true; return; }
    var limit = parseFloat(live.getAttribute("data-silent-s")) || 2.5;
    var gap = (performance.now() - heard) / 1000;
    if (gap > limit) {
      var old = (age === null ? "of unknown age" : (age + gap).toFixed(1) + " s old");
      silent.textContent = "\u26a0 Live feed silent for " + gap.toFixed(1) +
        " s: the view is " + old + ". It reconnects by itself; reload if it does not.";
      silent.hidden = false;
    }
  }, 500);
})();
