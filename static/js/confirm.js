// Forms marked class="confirm" ask first, with their data-confirm text (no inline handlers: CSP).
(function () {
  "use strict";
  document.querySelectorAll("form.confirm").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
    });
  });
})();
