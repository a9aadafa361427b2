// labkit upload page: show the image at once, upload it, then wait for its result on the WebSocket.
"use strict";

const cards = new Map();          // request id -> card element
let socket = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  const status = document.getElementById("connection");
  socket.onopen = () => {
    status.textContent = "connected: results arrive live";
    // After a reconnect, ask again for everything still waiting (results are kept server-side).
    for (const [id, card] of cards) if (!card.dataset.done) subscribe(id);
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

function subscribe(id) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "subscribe", id}));
}

function newCard(file) {
  const card = document.getElementById("card").content.firstElementChild.cloneNode(true);
  card.querySelector("img").src = URL.createObjectURL(file);   // shown at once, before any upload
  card.querySelector("img").alt = file.name;
  card.querySelector("img").onerror = (event) => { event.target.hidden = true; };  // not an image
  card.querySelector(".name").textContent = file.name;          // textContent: never parsed as HTML
  document.getElementById("cards").prepend(card);
  return card;
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

async function upload(file) {
  const card = newCard(file);
  const form = new FormData();
  form.append("file", file);
  const labels = document.getElementById("labels").value.trim();
  if (labels) form.append("labels", labels);
  try {
    const response = await postImage(form);
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || response.statusText);
    card.querySelector(".status").textContent = "Processing…";
    cards.set(body.id, card);
    subscribe(body.id);
    pollFallback(body.id);
  } catch (error) {
    fail(card, error.message);
  }
}

// REST fallback: if no WebSocket result came within a few seconds, ask over HTTP.
function pollFallback(id) {
  setTimeout(async () => {
    const card = cards.get(id);
    if (!card || card.dataset.done) return;
    const response = await fetch(`/api/images/${id}`);
    if (response.ok) {
      const body = await response.json();
      if (body.status !== "processing") showResult(body);
    }
    pollFallback(id);
  }, 5000);
}

function fail(card, message) {
  card.classList.add("error");
  card.dataset.done = "1";
  card.querySelector(".status").textContent = `Failed: ${message}`;
}

function showResult(result) {
  const card = cards.get(result.id);
  if (!card || card.dataset.done) return;
  if (result.status !== "done") return fail(card, result.error || "could not be processed");
  card.dataset.done = "1";
  const ms = Math.round(result.timings_ms.total);
  card.querySelector(".status").textContent = `Done in ${ms} ms · ${result.model}`;
  const list = card.querySelector(".labels");
  list.replaceChildren(...result.labels.map(({label, score}) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = label;
    const pct = document.createElement("span");
    pct.textContent = `${(score * 100).toFixed(1)}%`;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(score * 100).toFixed(1)}%`;
    bar.append(fill);
    item.append(name, pct, bar);
    return item;
  }));
}

const input = document.getElementById("file");
const drop = document.getElementById("drop");
input.addEventListener("change", () => { [...input.files].forEach(upload); input.value = ""; });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  [...e.dataTransfer.files].forEach(upload);
});
connect();
