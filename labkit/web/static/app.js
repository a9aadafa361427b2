// labkit upload page: show each image at once as a card, upload it, then wait for its result on the WebSocket.
//
// A card moves through data-state: queued (waiting for an upload slot, or for the server's
// Retry-After) → processing (Kafka has it; a processor will score it) → done | failed.
// The session's cards are kept in sessionStorage, so a reload shows them again.
"use strict";

const UPLOADS_AT_ONCE = 3;            // fifty files dropped at once are sent three at a time
const HISTORY_KEY = "labkit-history";
const HISTORY_MAX = 50;

const cards = new Map();              // request id -> card element
const queue = [];                     // {file, card, labels} waiting for an upload slot
let uploading = 0;
let socket = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  const status = document.getElementById("connection");
  socket.onopen = () => {
    status.textContent = "connected: results arrive live";
    // After a reconnect, ask again for everything still waiting (results are kept server-side).
    for (const [id, card] of cards) if (card.dataset.state === "processing") subscribe(id);
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
  for (const [id, card] of cards) if (card.dataset.state === "processing") pollFallback(id, 0);
});

function subscribe(id) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "subscribe", id}));
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
  for (const file of files) {
    const card = newCard(file.name || "pasted image", URL.createObjectURL(file));  // shown at once
    setState(card, "queued", "Queued…");
    queue.push({file, card, labels});
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
  const {file, card, labels} = job;
  const form = new FormData();
  form.append("file", file, file.name || "pasted-image.png");
  if (labels) form.append("labels", labels);
  setState(card, "queued", "Uploading…");
  try {
    const response = await postImage(form);
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
    setState(card, "processing", "Processing…");
    card.dataset.id = body.id;
    cards.set(body.id, card);
    remember({id: body.id, name: file.name || "pasted image", thumb: await thumbnail(file)});
    subscribe(body.id);
    pollFallback(body.id);
  } catch (error) {
    fail(card, error.message);
  }
}

// REST fallback: if no WebSocket result came within a few seconds, ask over HTTP.
function pollFallback(id, delay = 5000) {
  setTimeout(async () => {
    const card = cards.get(id);
    if (!card || card.dataset.state !== "processing") return;
    try {
      const response = await fetch(`/api/images/${id}`);
      if (response.ok) {
        const body = await response.json();
        if (body.status !== "processing") showResult(body);
      }
    } catch (error) { /* offline for a moment: try again later */ }
    pollFallback(id);
  }, delay);
}

// --- results -----------------------------------------------------------------------------

function fail(card, message) {
  card.classList.add("error");
  setState(card, "failed", `Failed: ${message}`);
}

function showResult(result) {
  const card = cards.get(result.id);
  if (!card || card.dataset.state === "done" || card.dataset.state === "failed") return;
  remember({id: result.id, result});
  if (result.status !== "done") return fail(card, result.error || "could not be processed");
  setState(card, "done", `Done in ${Math.round(result.timings_ms.total)} ms · ${result.model}`);
  const list = card.querySelector(".labels");
  list.replaceChildren(...result.labels.map(({label, score}) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = label;                                 // a label of the user's own: text, never HTML
    const pct = document.createElement("span");
    pct.textContent = `${(score * 100).toFixed(1)}%`;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "presentation");
    const fill = document.createElement("span");
    fill.style.width = `${(score * 100).toFixed(1)}%`;
    bar.append(fill);
    item.append(name, pct, bar);
    return item;
  }));
}

// --- this session's history ----------------------------------------------------------------

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function remember(entry) {
  const entries = history();
  const known = entries.find((e) => e.id === entry.id);
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
    card.dataset.id = entry.id;
    cards.set(entry.id, card);
    setState(card, "processing", "Processing…");
    if (entry.result) showResult(entry.result); else pollFallback(entry.id, 0);
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
restoreHistory();
connect();
