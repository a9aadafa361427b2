// "Behind the scenes" on a result card: where its request sat in Kafka and, per task (clip, ocr…), who scored it and a waterfall of where its time went.
//
// One request, one position in image-requests; each task's consumer group reads it on its own,
// so each task has its own processor, batch and timeline. Six stretches, each bar starting where the one before ended (CSS widths, no chart library):
// the upload and the delivery are measured by this browser, the rest by the processor. The
// clocks of the browser, the web app and the processor agree on one machine; across machines
// the stretches that compare two of them (queued, delivery) are approximate, and the note says so.
"use strict";

const SEGMENTS = [
  ["upload", "upload", "browser → the web app's 202 (Kafka has it)"],
  ["queued", "queued in Kafka", "sent → a processor fetched it"],
  ["batch_wait", "batch wait", "fetched → its batch's model pass began (filling the batch, the batch before it)"],
  ["decode", "decode", "image bytes → model input"],
  ["inference", "inference", "its share of the batch's model pass"],
  ["delivery", "result delivery", "result produced → shown here"],
];

// The block of one task inside "behind the scenes", made on first use.
function behindTask(behind, task, title) {
  let block = behind.querySelector(`.behind-task[data-task="${CSS.escape(task)}"]`);
  if (!block) {
    block = document.getElementById("behind-task").content.firstElementChild.cloneNode(true);
    block.dataset.task = task;
    block.querySelector(".task-name").textContent = title;
    block.querySelector(".waterfall").setAttribute("aria-label", `Where this image's time went in ${title}`);
    behind.querySelector(".behind-tasks").append(block);
  }
  return block;
}

function showBehind(card, result, seen, title) {
  const behind = card.querySelector(".behind");
  const known = (value) => (value === null || value === undefined ? "—" : String(value));
  behind.querySelector(".partition").textContent = known(result.partition ?? seen.partition);
  behind.querySelector(".offset").textContent = known(result.offset ?? seen.offset);
  const block = behindTask(behind, result.task, title);
  block.querySelector(".processor").textContent = result.processor || "—";
  block.querySelector(".batch-size").textContent = result.batch_size ? `${result.batch_size} image(s)` : "—";
  const waterfall = block.querySelector(".waterfall");
  const note = block.querySelector(".note");
  behind.hidden = false;
  if (result.status !== "done") {                          // an error result: where it was, not a timeline
    waterfall.hidden = note.hidden = true;
    return;
  }
  const timings = result.timings_ms || {};
  const ms = SEGMENTS.map(([key]) => {
    const value = key === "upload" ? seen.upload_ms : key === "delivery" ? seen.delivery_ms : timings[key];
    return Math.max(Number(value) || 0, 0);
  });
  const sum = ms.reduce((a, b) => a + b, 0) || 1;
  let start = 0;
  waterfall.replaceChildren(...SEGMENTS.map(([key, name, meaning], i) => {
    const row = document.createElement("li");
    row.dataset.segment = key;
    row.dataset.ms = ms[i].toFixed(1);
    row.title = meaning;
    const label = document.createElement("span");
    label.className = "segment";
    label.textContent = name;
    const track = document.createElement("div");
    track.className = "track";
    track.setAttribute("role", "presentation");
    const bar = document.createElement("span");
    bar.style.marginLeft = `${((start / sum) * 100).toFixed(2)}%`;   // CSSOM, which the CSP allows
    bar.style.width = `${((ms[i] / sum) * 100).toFixed(2)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "ms";
    value.textContent = `${ms[i] < 10 ? ms[i].toFixed(1) : Math.round(ms[i])} ms`;
    row.append(label, value, track);
    start += ms[i];
    return row;
  }));
  note.textContent =
    (seen.upload_ms === null || seen.delivery_ms === null ? "Upload or delivery was not measured here. " : "") +
    "Upload is timed by this browser alone. Queued compares the web app's clock with the processor's, " +
    "delivery the processor's with this browser's: exact on one machine, approximate across machines. " +
    `Inference is this image's share of one ${title} pass over ${result.batch_size || 1} image(s).`;
}
