// Search page: the image search posts the text and filters of the main form with it, and an
// image pasted or dropped anywhere on the page searches by that image. Keys: "/" goes to the
// search box from anywhere but a field; the down arrow goes from the search box to the results
// (grid.js moves on from there).
(function () {
  "use strict";
  const textForm = document.getElementById("search-form");
  const imageForm = document.querySelector("form.image-search");
  if (!textForm || !imageForm) return;
  const fileInput = imageForm.querySelector("input[type=file]");
  const searchBox = textForm.querySelector("input[name=q]");
  const grid = document.querySelector("ol[data-keyboard-grid]");
  const keysHelp = document.getElementById("keys-help");
  if (keysHelp && grid) keysHelp.hidden = false;

  function isTyping(element) {
    return element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName);
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "/" && !isTyping(event.target)) {
      event.preventDefault();
      searchBox.focus();
      searchBox.select();
    } else if (event.key === "ArrowDown" && event.target === searchBox && grid) {
      if (window.MediaSearchGrid?.focusFirst(grid)) event.preventDefault();
    }
  });

  imageForm.addEventListener("submit", function () {
    imageForm.querySelectorAll("input[data-copied]").forEach((input) => input.remove());
    imageForm.querySelectorAll("input[type=hidden][name=q]").forEach((input) => input.remove());
    for (const [name, value] of new FormData(textForm)) {
      if (name === "similar" || name === "page") continue;
      const copy = document.createElement("input");
      copy.type = "hidden";
      copy.name = name;
      copy.value = value;
      copy.dataset.copied = "1";
      imageForm.appendChild(copy);
    }
  });

  function searchWithImage(file) {
    if (!file || !file.type.startsWith("image/")) return false;
    const transfer = new DataTransfer();
    transfer.items.add(file);
    fileInput.files = transfer.files;
    imageForm.requestSubmit();
    return true;
  }

  document.addEventListener("paste", function (event) {
    const file = [...(event.clipboardData?.files || [])][0];
    if (searchWithImage(file)) event.preventDefault();
  });
  document.addEventListener("dragover", function (event) {
    if ([...event.dataTransfer.types].includes("Files")) event.preventDefault();
  });
  document.addEventListener("drop", function (event) {
    const file = [...(event.dataTransfer?.files || [])][0];
    if (file) {
      event.preventDefault();
      searchWithImage(file);
    }
  });
})();
