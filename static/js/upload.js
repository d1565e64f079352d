// Upload page: drop photos or whole folders (or choose them), and each file is sent on its own
// request, a few at a time, with a progress bar; the server answers what became of it
// (uploaded, already in the library, or refused with the reason). Then the page asks for the
// state of the stored photos every 1.5 s until each is ready or failed. Without this script the
// page is a plain form that posts every file at once.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;

  const PARALLEL = 3;
  const POLL_MS = 1500;
  const POLL_TIMEOUT_MS = 10000; // a poll that hangs must not stop the following ones
  const STATUS_BATCH = 100; // the status endpoint takes at most 200 ids
  const FINAL = new Set(["ready", "failed", "gone"]);
  const IMAGE_NAME = /\.(jpe?g|jfif|png|webp|gif|tiff?|bmp|hei[cf]|avif)$/i;
  const STATUS_TEXT = {
    pending: "Pending",
    processing: "Processing",
    ready: "Ready",
    failed: "Failed",
    gone: "Deleted",
  };

  const maxBytes = Number(form.dataset.maxBytes);
  const tooBig = form.dataset.tooBig;
  // Videos have their own limit; the browser's type (from the name) is only a first guess,
  // the server sniffs the content and checks again.
  const maxVideoBytes = Number(form.dataset.maxVideoBytes);
  const tooBigVideo = form.dataset.tooBigVideo;
  const statusUrl = form.dataset.statusUrl;
  const photosUrl = form.dataset.photosUrl;
  const uploadUrl = form.action;
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const fileInput = form.querySelector("input[type=file][name=photos]");
  const folderInput = document.getElementById("folder-input");
  const dropzone = document.getElementById("dropzone");
  const progressSection = document.getElementById("upload-progress");
  const summary = document.getElementById("upload-summary");
  const list = document.getElementById("upload-list");

  // The scripted controls replace the plain form's.
  form.querySelectorAll("[data-script-only]").forEach((element) => (element.hidden = false));
  form.querySelectorAll("[data-without-script]").forEach((element) => (element.hidden = true));
  fileInput.hidden = true;
  folderInput.disabled = false;
  if (!("webkitdirectory" in folderInput)) document.getElementById("choose-folder").hidden = true;
  form.classList.add("scripted");

  const items = []; // one per file, in the order given
  let sending = 0;
  let skipped = 0; // files in dropped folders that are not images
  let pollTimer = null;
  let pollFailures = 0;
  let heldUntil = 0; // the server's upload rate limit said to wait until then (ms)
  let holdTimer = null;

  // --- collecting files -------------------------------------------------------------------

  function isImage(file) {
    return file.type.startsWith("image/") || IMAGE_NAME.test(file.name);
  }

  function isHidden(name) {
    return name.startsWith(".");
  }

  // Files found in folders are kept only when they look like images; a file given directly is
  // always sent, so that the server can say why it refuses it.
  function addFromFolder(file, path) {
    const name = path.split("/").pop();
    if (isHidden(name) || !isImage(file)) {
      skipped += 1;
      return;
    }
    add(file, path);
  }

  function readEntries(reader) {
    return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
  }

  function fileOf(entry) {
    return new Promise((resolve, reject) => entry.file(resolve, reject));
  }

  async function walk(entry, inFolder) {
    const path = entry.fullPath.replace(/^\//, "");
    if (entry.isFile) {
      try {
        const file = await fileOf(entry);
        if (inFolder) addFromFolder(file, path);
        else add(file, path);
      } catch (error) {
        addRefused(path, "the file could not be read");
      }
      return;
    }
    if (!entry.isDirectory || isHidden(entry.name)) return;
    const reader = entry.createReader();
    const children = [];
    try {
      // Chromium hands out a directory 100 entries at a time: read until an empty batch.
      for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
        children.push(...batch);
      }
    } catch (error) {
      addRefused(path + "/", "the folder could not be read");
    }
    children.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    for (const child of children) await walk(child, true);
  }

  async function addDropped(dataTransfer) {
    // Entries must be taken while the drop event runs: the list is emptied after it.
    const dropped = [...(dataTransfer.items || [])]
      .filter((item) => item.kind === "file")
      .map((item) => ({ entry: item.webkitGetAsEntry?.() || null, file: item.getAsFile() }));
    if (!dropped.length) {
      [...(dataTransfer.files || [])].forEach((file) => add(file, file.name));
    }
    for (const { entry, file } of dropped) {
      if (entry) await walk(entry, false);
      else if (file) add(file, file.name);
    }
    render();
  }

  // --- the list ---------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function makeRow(path) {
    const row = element("li", "upload-item");
    const thumb = element("span", "upload-thumb");
    const main = element("div", "upload-main");
    const name = element("span", "upload-name", path);
    const bar = element("progress", "upload-bar");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Sending " + path);
    const note = element("span", "upload-note");
    const state = element("span", "status status-waiting", "Waiting");
    const retry = element("button", "small upload-retry", "Retry");
    retry.type = "button";
    retry.hidden = true;
    main.append(name, bar, note);
    row.append(thumb, main, state, retry);
    list.append(row);
    return { row, thumb, name, bar, note, state, retry };
  }

  function add(file, path) {
    const item = { file, path, phase: "waiting", progress: 0, outcome: "", reason: "" };
    item.view = makeRow(path);
    item.view.retry.addEventListener("click", () => {
      item.phase = "waiting";
      item.reason = "";
      show(item);
      pump();
    });
    items.push(item);
    const video = file.type.startsWith("video/");
    if (file.size > (video ? maxVideoBytes : maxBytes)) refuse(item, video ? tooBigVideo : tooBig);
    show(item);
    progressSection.hidden = false;
    pump();
  }

  function addRefused(path, reason) {
    const item = { file: null, path, phase: "refused", progress: 0, outcome: "rejected", reason };
    item.view = makeRow(path);
    items.push(item);
    show(item);
    progressSection.hidden = false;
  }

  function refuse(item, reason) {
    item.phase = "refused";
    item.outcome = "rejected";
    item.reason = reason;
  }

  function show(item) {
    const view = item.view;
    const photo = item.photo;
    let label;
    let status;
    let note = item.reason;
    if (item.phase === "waiting") {
      [label, status] = ["Waiting", "waiting"];
    } else if (item.phase === "sending" && item.progress < 1) {
      [label, status] = [`Sending ${Math.round(item.progress * 100)}%`, "sending"];
    } else if (item.phase === "sending") {
      [label, status] = ["Checking", "sending"]; // sent; the server reads and stores it
    } else if (item.phase === "refused") {
      [label, status] = ["Refused", "failed"];
    } else if (item.phase === "error") {
      [label, status] = ["Not sent", "failed"];
    } else {
      [label, status] = [STATUS_TEXT[photo.status] || photo.status, photo.status];
      note = photo.status === "failed" ? photo.failure_reason : "";
      if (photo.status === "gone") note = "this photo is no longer in your library";
      if (item.outcome === "duplicate") {
        note = "already in your library, not stored again" + (note ? "; " + note : "");
      }
      if (item.outcome === "paired") {
        note = `the motion of Live Photo ${photo.filename}: one item with it`;
      }
    }
    view.row.dataset.phase = item.phase;
    view.row.dataset.status = status;
    view.state.className = `status status-${status}`;
    view.state.textContent = label;
    view.bar.hidden = !["waiting", "sending"].includes(item.phase);
    view.bar.value = Math.round(item.progress * 100);
    view.note.textContent = note;
    view.note.className = "upload-note" + (["failed", "gone"].includes(status) ? " reason" : "");
    view.retry.hidden = item.phase !== "error";
    if (photo && photo.url && view.name.tagName !== "A") {
      const link = element("a", "upload-name", item.path);
      link.href = photo.url;
      view.name.replaceWith(link);
      view.name = link;
    }
    if (photo && photo.thumbnail && !view.thumb.firstChild) {
      const image = element("img");
      image.src = photo.thumbnail;
      image.alt = "";
      view.thumb.append(image);
    }
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderSummary();
    });
  }

  function renderSummary() {
    const count = (test) => items.filter(test).length;
    const stored = items.filter((item) => item.phase === "stored");
    const photoCount = (status) => stored.filter((item) => item.photo.status === status).length;
    const inFlight = count((item) => ["waiting", "sending"].includes(item.phase));
    const working = stored.length - photoCount("ready") - photoCount("failed") - photoCount("gone");

    const sent = [
      plural(count((item) => item.outcome === "created"), "uploaded", "uploaded"),
      plural(count((item) => item.outcome === "duplicate"), "duplicate", "duplicates"),
      plural(count((item) => item.phase === "refused"), "refused", "refused"),
    ];
    const notSent = count((item) => item.phase === "error");
    if (notSent) sent.push(plural(notSent, "not sent", "not sent"));
    const states = [
      plural(photoCount("ready"), "ready", "ready"),
      plural(photoCount("failed"), "failed", "failed"),
    ];
    if (working) states.push(plural(working, "processing", "processing"));

    summary.replaceChildren();
    const lines = [
      inFlight
        ? `Uploading ${plural(items.length, "file", "files")}: ${inFlight} to go.`
        : `Upload of ${plural(items.length, "file", "files")} finished.`,
      sent.join(", ") + ".",
      states.join(", ") + ".",
    ];
    if (skipped) lines.push(`${plural(skipped, "file", "files")} in folders skipped: not images.`);
    const held = Math.ceil((heldUntil - Date.now()) / 1000);
    if (held > 0) lines.push(`The server takes only so many uploads a minute: going on in ${held} s.`);
    for (const line of lines) summary.append(element("p", "", line));
    const done = !inFlight && !working;
    summary.dataset.done = done ? "true" : "false";
    if (done && stored.length) {
      const link = element("a", "", "See them on My photos");
      link.href = photosUrl;
      const last = element("p", "", "All done. ");
      last.append(link);
      summary.append(last);
    }
  }

  // --- sending ----------------------------------------------------------------------------

  function pump() {
    while (sending < PARALLEL && Date.now() >= heldUntil) {
      const next = items.find((item) => item.phase === "waiting");
      if (!next) break;
      send(next);
    }
    render();
  }

  function send(item) {
    sending += 1;
    item.phase = "sending";
    item.progress = 0;
    show(item);
    const request = new XMLHttpRequest();
    request.open("POST", uploadUrl);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRFToken", csrfToken);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      item.progress = event.loaded / event.total;
      show(item);
    });
    request.addEventListener("load", () => received(item, request));
    request.addEventListener("error", () => failed(item, "the connection failed"));
    request.addEventListener("abort", () => failed(item, "the upload was stopped"));
    const data = new FormData();
    data.append("photos", item.file, item.file.name);
    request.send(data);
  }

  // Over the upload rate limit: the file goes back in the queue, and nothing more is sent until
  // the time the server gave (Retry-After); the summary counts it down.
  function hold(item, seconds) {
    sending -= 1;
    item.phase = "waiting";
    item.progress = 0;
    show(item);
    heldUntil = Math.max(heldUntil, Date.now() + seconds * 1000);
    clearInterval(holdTimer);
    holdTimer = setInterval(() => {
      if (Date.now() >= heldUntil) clearInterval(holdTimer);
      pump();
    }, 1000);
    render();
  }

  function received(item, request) {
    if (request.status === 429) {
      hold(item, Number(request.getResponseHeader("Retry-After")) || 10);
      return;
    }
    const body = request.response;
    const result = body && body.results && body.results[0];
    if (request.status === 200 && result) {
      item.outcome = result.outcome;
      if (result.outcome === "rejected") {
        refuse(item, result.reason);
      } else {
        item.phase = "stored";
        item.photo = result.photo;
      }
      finish(item);
    } else if (body && body.detail) {
      failed(item, body.detail);
    } else if (request.responseURL && !request.responseURL.startsWith(uploadUrl)) {
      failed(item, "you are logged out: log in again in another tab, then retry");
    } else {
      failed(item, `the server answered ${request.status} ${request.statusText}`.trim());
    }
  }

  function failed(item, reason) {
    item.phase = "error";
    item.reason = reason;
    finish(item);
  }

  function finish(item) {
    sending -= 1;
    show(item);
    pump();
    schedulePoll();
  }

  // --- following processing ---------------------------------------------------------------

  function waitingPhotos() {
    const ids = items
      .filter((item) => item.phase === "stored" && !FINAL.has(item.photo.status))
      .map((item) => item.photo.id);
    return [...new Set(ids)];
  }

  function schedulePoll() {
    if (pollTimer === null && waitingPhotos().length) {
      // After failures, ask less often (up to every 15 s).
      pollTimer = setTimeout(poll, Math.min(POLL_MS * 2 ** pollFailures, 15000));
    }
  }

  async function poll() {
    const ids = waitingPhotos();
    try {
      for (let start = 0; start < ids.length; start += STATUS_BATCH) {
        const batch = ids.slice(start, start + STATUS_BATCH);
        const query = new URLSearchParams(batch.map((id) => ["id", String(id)]));
        const response = await fetch(`${statusUrl}?${query}`, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          signal: AbortSignal.timeout(POLL_TIMEOUT_MS),
        });
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        const states = new Map((await response.json()).photos.map((photo) => [photo.id, photo]));
        for (const item of items) {
          if (item.phase !== "stored" || !batch.includes(item.photo.id)) continue;
          // An id left out of the answer is no longer the user's photo.
          item.photo = states.get(item.photo.id) || { ...item.photo, status: "gone" };
          show(item);
        }
      }
      pollFailures = 0;
    } catch (error) {
      pollFailures = Math.min(pollFailures + 1, 4);
    }
    pollTimer = null;
    render();
    schedulePoll();
  }

  // --- wiring -----------------------------------------------------------------------------

  document.getElementById("choose-files").addEventListener("click", () => fileInput.click());
  document.getElementById("choose-folder").addEventListener("click", () => folderInput.click());
  function addChosen() {
    [...fileInput.files].forEach((file) => add(file, file.name));
    fileInput.value = "";
    render();
  }
  fileInput.addEventListener("change", addChosen);
  // Files chosen in the plain form before this script ran are sent too.
  if (fileInput.files.length) addChosen();
  folderInput.addEventListener("change", () => {
    [...folderInput.files].forEach((file) => addFromFolder(file, file.webkitRelativePath));
    folderInput.value = "";
    render();
  });

  let dragTimer = null;
  document.addEventListener("dragover", (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("dragging");
    clearTimeout(dragTimer);
    dragTimer = setTimeout(() => dropzone.classList.remove("dragging"), 200);
  });
  // Anywhere on the page: a file dropped beside the zone must not open in the browser.
  document.addEventListener("drop", (event) => {
    if (!event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    dropzone.classList.remove("dragging");
    addDropped(event.dataTransfer);
  });

  window.addEventListener("beforeunload", (event) => {
    if (items.some((item) => ["waiting", "sending"].includes(item.phase))) event.preventDefault();
  });
})();
