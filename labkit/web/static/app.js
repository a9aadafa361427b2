// labkit upload page: show each image at once as a card, upload it, then wait for each model's result on the WebSocket.
//
// A card moves through data-state: queued (waiting for an upload slot, or for the server's
// Retry-After) → processing (Kafka has it; each chosen model's processors will score it) →
// done (every model answered; one may have failed) | failed. Inside it, each model (task: clip,
// ocr…) has a section with its own data-state, filled the moment its result arrives.
// The session's cards are kept in sessionStorage, so a reload shows them again.
// tasks.js draws the model checkboxes and each task's section; a finished task opens "behind
// the scenes" (behind.js); pipeline.js draws the live strip.
"use strict";

const UPLOADS_AT_ONCE = 3;            // fifty files dropped at once are sent three at a time
const HISTORY_KEY = "labkit-history-v2";          // v2: entries keyed by request_id
const HISTORY_MAX = 50;

const cards = new Map();              // request id -> card element
const queue = [];                     // {file, card, labels, tasks} waiting for an upload slot
let uploading = 0;
let socket = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  const status = document.getElementById("connection");
  socket.onopen = () => {
    status.textContent = "connected: results arrive live";
    // After a reconnect, ask again for everything still waiting (results are kept server-side).
    for (const [requestId, card] of cards) if (card.dataset.state === "processing") subscribe(requestId);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "result") showResult(message);
  };
  socket.onclose = () => {
    status.textContent = "disconnected: reconnecting…";
    setTimeout(connect, 1000);
  };
}

// Back online (a phone leaving a tunnel, a laptop waking up): the socket may have died without
// a close event, or been opened while the network was away. Start a fresh one, and ask over
// HTTP at once for every image still waiting.
window.addEventListener("online", () => {
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  connect();
  for (const [requestId, card] of cards) if (card.dataset.state === "processing") pollFallback(requestId, 0);
});

function subscribe(requestId) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "subscribe", request_id: requestId}));
}

function setState(card, state, text) {
  card.dataset.state = state;
  card.querySelector(".status").textContent = text;
}

function newCard(name, imageUrl) {
  const card = document.getElementById("card").content.firstElementChild.cloneNode(true);
  const img = card.querySelector("img");
  img.alt = name;
  img.onerror = () => { img.hidden = true; };                  // not an image: no broken icon
  if (imageUrl) img.src = imageUrl; else img.hidden = true;
  card.querySelector(".name").textContent = name;             // textContent: never parsed as HTML
  document.getElementById("cards").prepend(card);
  return card;
}

// --- uploading -----------------------------------------------------------------------------

function addFiles(files) {
  const labels = document.getElementById("labels").value.trim();
  const tasks = chosenTasks();
  for (const file of files) {
    const card = newCard(file.name || "pasted image", URL.createObjectURL(file));  // shown at once
    if (tasks && !tasks.length) {
      fail(card, "choose at least one model above, then add the image again");
      continue;
    }
    expectTasks(card, tasks || enabledTasks || [], "queued", "Queued…");
    setState(card, "queued", "Queued…");
    queue.push({file, card, labels, tasks});
  }
  pump();
}

function pump() {
  while (uploading < UPLOADS_AT_ONCE && queue.length) {
    uploading += 1;
    upload(queue.shift()).finally(() => { uploading -= 1; pump(); });
  }
}

// When the server sets LABKIT_API_TOKEN, uploads need it: ask once, keep it for this tab only.
async function postImage(form) {
  const token = sessionStorage.getItem("labkit-token");
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  const response = await fetch("/api/images", {method: "POST", body: form, headers});
  if (response.status !== 401) return response;
  const given = window.prompt("This labkit needs an API token (LABKIT_API_TOKEN on the server):");
  if (!given) return response;
  sessionStorage.setItem("labkit-token", given.trim());
  return postImage(form);
}

async function upload(job) {
  const {file, card, labels, tasks} = job;
  const form = new FormData();
  form.append("file", file, file.name || "pasted-image.png");
  if (labels) form.append("labels", labels);
  for (const task of tasks || []) form.append("tasks", task);
  setState(card, "queued", "Uploading…");
  try {
    const started = performance.now();
    const response = await postImage(form);
    card.uploadMs = performance.now() - started;             // browser → the web app's answer, one clock
    const body = await response.json();
    const retryAfter = Number(response.headers.get("Retry-After"));
    if ((response.status === 429 || response.status === 503) && retryAfter > 0) {
      // The server is busy: wait as long as it asked, then try the same file again.
      setState(card, "queued", `Server busy — retrying in ${retryAfter} s…`);
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
      queue.unshift(job);
      return;
    }
    if (!response.ok) throw new Error(body.detail || response.statusText);
    expectTasks(card, body.tasks, "processing", "Processing…");   // the tasks that will answer (the 202 lists them)
    setState(card, "processing", "Processing…");
    card.dataset.requestId = body.request_id;
    card.accepted = {partition: body.partition, offset: body.offset};
    cards.set(body.request_id, card);
    remember({request_id: body.request_id, name: file.name || "pasted image", thumb: await thumbnail(file), tasks: card.tasks});
    subscribe(body.request_id);
    pollFallback(body.request_id);
  } catch (error) {
    fail(card, error.message);
  }
}

// REST fallback: if not every task's result came on the WebSocket within a few seconds, ask over HTTP.
function pollFallback(requestId, delay = 5000) {
  setTimeout(async () => {
    const card = cards.get(requestId);
    if (!card || card.dataset.state !== "processing") return;
    try {
      const response = await fetch(`/api/images/${encodeURIComponent(requestId)}`);
      if (response.ok) {
        const body = await response.json();
        for (const result of Object.values(body.tasks || {})) if (result.status !== "processing") showResult(result);
      }
    } catch (error) { /* offline for a moment: try again later */ }
    pollFallback(requestId);
  }, delay);
}

// --- results -----------------------------------------------------------------------------

function fail(card, message) {
  card.classList.add("error");
  setState(card, "failed", `Failed: ${message}`);
  for (const section of card.querySelectorAll(".task")) {
    if (section.dataset.state === "queued" || section.dataset.state === "processing") section.remove();
  }
}

function ms(value) {
  return `${Math.round(value)} ms`;
}

// One task's result into its section; `seen` is what this browser measured (upload, delivery),
// kept with the result across a reload.
function showResult(result, seen) {
  const card = cards.get(result.request_id);
  if (!card || card.dataset.state === "failed") return;
  const task = result.task;
  const section = taskSection(card, task);
  if (section.dataset.state === "done" || section.dataset.state === "failed") return;   // at-least-once: keep the first
  if (!seen) {
    seen = {
      upload_ms: card.uploadMs ?? null,
      // result produced (the processor's clock) → shown (this browser's clock): approximate across machines
      delivery_ms: result.produced_at_ms ? Math.max(Date.now() - result.produced_at_ms, 0) : null,
      partition: card.accepted?.partition ?? null,
      offset: card.accepted?.offset ?? null,
    };
  }
  const entry = history().find((e) => e.request_id === result.request_id) || {};
  remember({request_id: result.request_id, results: {...entry.results, [task]: result}, seen: {...entry.seen, [task]: seen}});
  showBehind(card, result, seen, taskTitle(task));
  if (result.status !== "done") {
    setTaskState(section, "failed", `Failed: ${result.error || "could not be processed"}`);
  } else {
    setTaskState(section, "done", `Done in ${ms(result.timings_ms.total)} · ${result.model}`);
    showAnswer(section, result.shown);
  }
  updateCard(card);
}

// The card is done once every task it waits for has answered (failed ones included), failed if all failed.
function updateCard(card) {
  const sections = [...card.querySelectorAll(".task")].filter((s) => (card.tasks || []).includes(s.dataset.task));
  const states = sections.map((s) => s.dataset.state);
  if (!states.length || states.some((state) => state !== "done" && state !== "failed")) return;
  if (states.every((state) => state === "failed")) {
    card.classList.add("error");
    setState(card, "failed", "Failed: no model could read this image");
    return;
  }
  const failed = sections.filter((s) => s.dataset.state === "failed").map((s) => taskTitle(s.dataset.task));
  setState(card, "done", failed.length ? `Done, except ${failed.join(", ")}` : "Done");
}

// --- this session's history ----------------------------------------------------------------

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function remember(entry) {
  const entries = history();
  const known = entries.find((e) => e.request_id === entry.request_id);
  if (known) Object.assign(known, entry); else entries.push(entry);
  try {
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(entries.slice(-HISTORY_MAX)));
  } catch { /* storage full: history is a convenience, never a reason to fail */ }
}

// A small JPEG of the photo (data: URL) to show again after a reload; the original stays on the device.
async function thumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 160 / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.7);
  } catch { return null; }
}

function restoreHistory() {
  for (const entry of history()) {
    const card = newCard(entry.name, entry.thumb);
    card.dataset.requestId = entry.request_id;
    cards.set(entry.request_id, card);
    const results = entry.results || {};
    const tasks = entry.tasks || Object.keys(results);
    expectTasks(card, tasks.length ? tasks : ["clip"], "processing", "Processing…");
    setState(card, "processing", "Processing…");
    // A result kept before this page measured anything shows its timeline without the browser's parts.
    for (const [task, result] of Object.entries(results)) {
      showResult(result, (entry.results && entry.seen?.[task]) || {upload_ms: null, delivery_ms: null});
    }
    if (card.dataset.state === "processing") {
      subscribe(entry.request_id);                                    // (the socket also asks again once it opens)
      pollFallback(entry.request_id, 0);
    }
  }
}

// --- input: picker, keyboard, drag and drop, paste -------------------------------------------

const input = document.getElementById("file");
const drop = document.getElementById("drop");
input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  addFiles([...e.dataTransfer.files]);
});
document.addEventListener("paste", (e) => {          // a screenshot on the clipboard: Ctrl+V / ⌘V
  const files = [...(e.clipboardData?.files || [])];
  if (files.length) { e.preventDefault(); addFiles(files); }
});
loadTasks();
restoreHistory();
connect();
