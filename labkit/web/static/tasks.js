// The models (tasks) on the page: a checkbox per task the pipeline runs, and each card's section per task.
//
// GET /api/tasks says which tasks run (LABKIT_TASKS). All are checked at first; an upload with
// all of them checked names none, so every task scores it. A card gets one section per task
// that will answer it, with its own data-state (queued → processing → done | failed) and its
// result: CLIP's labels with bars, OCR's lines of text with their confidence.
"use strict";

const TASK_TITLES = {clip: "CLIP labels", ocr: "Text (OCR)"};
let enabledTasks = null;              // the tasks this pipeline runs (GET /api/tasks); null until known

function taskTitle(task) {
  return TASK_TITLES[task] || task;
}

// One checkbox per task the pipeline runs, all checked: native inputs, so Tab and Space work.
async function loadTasks() {
  try {
    const response = await fetch("/api/tasks");
    if (!response.ok) throw new Error(response.statusText);
    enabledTasks = (await response.json()).tasks;
  } catch (error) {
    setTimeout(loadTasks, 2000);                             // until then, uploads name no task: all of them run
    return;
  }
  const box = document.getElementById("tasks");
  box.replaceChildren(box.querySelector("legend"), ...enabledTasks.map((task) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "task";
    input.value = task;
    input.checked = true;
    label.append(input, ` ${taskTitle(task)}`);
    return label;
  }));
  box.hidden = false;
}

// The tasks checked now: null = all of them (the upload names none, so every task scores it).
function chosenTasks() {
  if (!enabledTasks) return null;
  const checked = [...document.querySelectorAll('#tasks input[name="task"]:checked')].map((input) => input.value);
  return checked.length === enabledTasks.length ? null : checked;
}

// A card's section for one task, made on first use (a task the card did not expect is shown too).
function taskSection(card, task) {
  let section = card.querySelector(`.task[data-task="${CSS.escape(task)}"]`);
  if (!section) {
    section = document.getElementById("task").content.firstElementChild.cloneNode(true);
    section.dataset.task = task;
    section.dataset.state = "queued";
    section.querySelector(".task-name").textContent = taskTitle(task);
    card.querySelector(".results").append(section);
  }
  return section;
}

function setTaskState(section, state, text) {
  section.dataset.state = state;
  section.querySelector(".task-status").textContent = text;
}

// Show the tasks a card waits for; drop sections of tasks that will not answer it.
function expectTasks(card, tasks, state, text) {
  card.tasks = tasks;
  for (const section of card.querySelectorAll(".task")) if (!tasks.includes(section.dataset.task)) section.remove();
  for (const task of tasks) {
    const section = taskSection(card, task);
    if (section.dataset.state === "queued" || section.dataset.state === "processing") setTaskState(section, state, text);
  }
}

function labelItem({label, score}) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = label;                                   // a label of the user's own: text, never HTML
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
}

function lineItem({text, score}) {
  const item = document.createElement("li");
  const words = document.createElement("span");
  words.className = "words";
  words.textContent = text;                                   // text read in a photo: text, never HTML
  const pct = document.createElement("span");
  pct.className = "confidence";
  pct.textContent = `${(score * 100).toFixed(0)}%`;
  item.append(words, pct);
  return item;
}

function noText() {
  const item = document.createElement("li");
  item.className = "none";
  item.textContent = "no text found";
  return item;
}
