// The history and search: what the sink keeps (GET /api/history, /api/search, /api/images/{request_id}/similar).
//
// Each hit shows every task's stored result as the task sums it up (a hit's `tasks`): nothing here
// knows any one task. Thumbnails come from the history itself (/api/images/{request_id}/thumbnail).
// Everything the server sends is set as text, never HTML. The list refreshes every 5 s while the page is visible.
"use strict";

const HISTORY_EVERY_MS = 5000;
const historyList = document.getElementById("history-list");
const historyMore = document.getElementById("history-more");
const historyStatus = document.getElementById("history-status");
const searchForm = document.getElementById("search");
const searchQuery = document.getElementById("query");
const found = document.getElementById("found");
const foundStatus = document.getElementById("found-status");
let historyNext = null;

function photos(n) {
  return `${n} photo${n === 1 ? "" : "s"}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// The words a hit goes by: its file name, or the start of its request id.
function hitName(hit) {
  return hit.filename || hit.request_id.slice(0, 8);
}

// One task's stored result, whatever the task: its title, the swatches of its rows where they have
// one, and its answer in one line as the task itself sums it up (or why there is none).
function keptLine(task, kept) {
  const line = document.createElement("p");
  line.className = "hit-task";
  line.dataset.task = task;
  line.dataset.state = kept.status;
  const name = document.createElement("span");
  name.className = "hit-task-name";
  name.textContent = `${kept.title}: `;
  line.append(name);
  for (const row of kept.shown?.rows || []) {
    if (!row.swatch || !/^#[0-9a-f]{6}$/.test(row.swatch)) continue;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = row.swatch;
    line.append(swatch);
  }
  const said = kept.status === "error" ? `failed: ${kept.error || "no reason given"}`
    : (kept.summary ?? "kept (a task this web app does not know)");
  line.append(document.createTextNode(said));
  return line;
}

// What a listed hit shows, in a few characters: the list is redrawn only when this changes.
function hitSignature(hit) {
  const kept = Object.entries(hit.tasks || {}).map(([task, result]) => `${task}=${result.status}:${result.summary}`);
  return `${hit.request_id}:${kept.join(";")}`;
}

function hitItem(hit, withScore) {
  const li = document.createElement("li");
  li.className = "hit";
  li.dataset.requestId = hit.request_id;
  li.dataset.signature = hitSignature(hit);
  const picture = document.createElement("img");
  picture.alt = `thumbnail: ${hitName(hit)}`;
  picture.loading = "lazy";
  if (hit.thumbnail) picture.src = hit.thumbnail;
  const text = document.createElement("div");
  const title = document.createElement("p");
  title.className = "hit-label";
  title.textContent = hitName(hit);
  text.append(title);
  if (withScore && hit.score !== null && hit.score !== undefined) {
    const score = document.createElement("p");
    score.className = "hit-score";
    score.textContent = `score ${hit.score.toFixed(3)}`;
    text.append(score);
  }
  text.append(...Object.entries(hit.tasks || {}).map(([task, kept]) => keptLine(task, kept)));
  const meta = document.createElement("p");
  meta.className = "hit-meta";
  meta.textContent = when(hit.sent_at);
  const similar = document.createElement("button");
  similar.type = "button";
  similar.className = "similar";
  similar.textContent = "Find similar";
  similar.addEventListener("click", () => showSimilar(hit));
  text.append(meta, similar);
  li.append(picture, text);
  return li;
}

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

async function loadHistory(more = false) {
  try {
    const page = await getJson(`/api/history?limit=12${more && historyNext ? `&before=${encodeURIComponent(historyNext)}` : ""}`);
    const shown = [...historyList.children].map((li) => li.dataset.signature).join(",");
    const fresh = page.images.map(hitSignature).join(",");
    if (more) historyList.append(...page.images.map((hit) => hitItem(hit, false)));
    else if (fresh !== shown) historyList.replaceChildren(...page.images.map((hit) => hitItem(hit, false)));  // else: as it is
    historyNext = page.next;
    historyMore.hidden = !page.next;
    historyStatus.textContent = historyList.children.length ? "" : "Nothing in the history yet: upload a photo.";
  } catch (error) {
    historyStatus.textContent = `The history is not available: ${error.message}`;
  }
}

function showFound(title, hits, extra = []) {
  found.replaceChildren(...hits.map((hit) => hitItem(hit, true)), ...extra.map((hit) => hitItem(hit, true)));
  foundStatus.textContent = title;
}

async function showSimilar(hit) {
  foundStatus.textContent = "Looking for similar photos…";
  try {
    const body = await getJson(`/api/images/${encodeURIComponent(hit.request_id)}/similar`);
    showFound(`${photos(body.images.length)} like ${hitName(hit)} (model ${hit.model || "unknown"})`, body.images);
    found.querySelector("button")?.focus();
  } catch (error) {
    foundStatus.textContent = `Could not search: ${error.message}`;
  }
}

searchForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = searchQuery.value.trim();
  if (!query) return;
  foundStatus.textContent = `Searching for “${query}”… (the first search loads the text model)`;
  try {
    const body = await getJson(`/api/search?q=${encodeURIComponent(query)}`);
    const words = body.text.filter((hit) => !body.images.some((image) => image.request_id === hit.request_id));
    const summary = `${photos(body.images.length)} look like “${query}” (score ≥ ${body.min_score}, model ${body.model})` +
      `, ${photos(body.text.length)} say it` + (body.note ? ` — ${body.note}` : "");
    showFound(summary, body.images, words);
  } catch (error) {
    foundStatus.textContent = `Could not search: ${error.message}`;
  }
});

historyMore.addEventListener("click", () => loadHistory(true));

async function refreshHistory() {
  if (!document.hidden && !historyNext) await loadHistory(false);   // a paged-through list is left alone
  setTimeout(refreshHistory, HISTORY_EVERY_MS);
}

refreshHistory();
