// The media page's player: start at the moment a search result pointed to (?t=), and make the
// list of matching moments seek in place instead of reloading the page.
(function () {
  "use strict";
  const player = document.getElementById("player");
  if (!player) return;
  const start = parseFloat(player.dataset.start || "0");
  player.addEventListener("loadedmetadata", function () {
    if (start > 0 && Math.abs(player.currentTime - start) > 0.25) player.currentTime = start;
  }, { once: true });
  document.querySelectorAll("[data-seek]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      player.currentTime = parseFloat(link.dataset.seek);
      player.play().catch(function () { /* autoplay refused: the position is set anyway */ });
      history.replaceState(null, "", link.href);
    });
  });
})();
