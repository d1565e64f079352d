// Result grids (ol[data-keyboard-grid]): arrow keys move the focus from tile to tile, Home and
// End go to the first and last tile; Enter opens the focused photo, as links do. The rows of
// the grid are read from the layout, so the keys follow the columns at any screen width.
(function () {
  "use strict";

  function tilesOf(grid) {
    return [...grid.querySelectorAll(":scope > li.tile")];
  }

  function columnsOf(tiles) {
    const top = tiles[0].getBoundingClientRect().top;
    const firstRow = tiles.findIndex((tile) => tile.getBoundingClientRect().top > top + 2);
    return firstRow === -1 ? tiles.length : firstRow;
  }

  function targetIndex(key, index, count, columns) {
    switch (key) {
      case "ArrowRight":
        return index + 1;
      case "ArrowLeft":
        return index - 1;
      case "ArrowDown":
        if (index + columns < count) return index + columns;
        // Below is a shorter last row: its last tile, as a grid of files would do.
        return Math.floor((count - 1) / columns) > Math.floor(index / columns) ? count - 1 : index;
      case "ArrowUp":
        return index - columns;
      case "Home":
        return 0;
      case "End":
        return count - 1;
      default:
        return null;
    }
  }

  function focusTile(tile) {
    const link = tile.querySelector("a.tile-link") || tile.querySelector("a");
    if (link) link.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const tile = event.target.closest?.("ol[data-keyboard-grid] > li.tile");
    if (!tile || event.target.tagName !== "A") return;
    const tiles = tilesOf(tile.parentElement);
    const index = tiles.indexOf(tile);
    const next = targetIndex(event.key, index, tiles.length, columnsOf(tiles));
    if (next === null) return;
    event.preventDefault();
    if (next >= 0 && next < tiles.length) focusTile(tiles[next]);
  });

  // The search page's script moves into the grid with this.
  window.MediaSearchGrid = {
    focusFirst(grid) {
      const tiles = tilesOf(grid);
      if (tiles.length) focusTile(tiles[0]);
      return tiles.length > 0;
    },
  };
})();
