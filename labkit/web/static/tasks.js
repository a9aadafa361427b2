// The models (tasks) on the page: a checkbox per task the pipeline runs, and each card's section per task.
//
// GET /api/tasks says which tasks run (LABKIT_TASKS) and how each is titled. All are checked at
// first; an upload with all of them checked names none, so every task scores it. A card gets one
// section per task that will answer it, with its own data-state (queued → processing → done |
// failed) and its answer as the task says to show it (a result's `shown`): rows of text, each
// with a score drawn as a bar ("bars", CLIP's labels) or a percentage ("lines", OCR's text), and
// a colour swatch where the row has one. Nothing here knows any one task.
"use strict";

let enabledTasks = null;              // the tasks this pipeline runs (GET /api/tasks); null until known
let taskTitles = {};                  // task → its title, from GET /api/tasks and from each result's `shown`

function taskTitle(task) {
  return taskTitles[task] || task;
}

// One checkbox per task the pipeline runs, all checked: native inputs, so Tab and Space work.
async function loadTasks() {
  try {
    const response = await fetch("/api/tasks");
    if (!response.ok) throw new Error(response.statusText);
    const body = await response.json();
    enabledTasks = body.tasks;
    for (const [task, shown] of Object.entries(body.shown || {})) taskTitles[task] = shown.title;
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

// One row of an answer: its text (never HTML: labels and OCR text come from users and photos),
// a colour swatch if it has one, and its score as a bar ("bars") or a percentage ("lines").
function answerRow(row, layout) {
  const item = document.createElement("li");
  const text = document.createElement("span");
  text.className = "words";
  if (row.swatch && /^#[0-9a-f]{6}$/.test(row.swatch)) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = row.swatch;
    text.append(swatch);
  }
  text.append(document.createTextNode(row.text));
  item.append(text);
  if (row.score !== null && row.score !== undefined) {
    const pct = document.createElement("span");
    pct.className = "confidence";
    pct.textContent = `${(row.score * 100).toFixed(layout === "bars" ? 1 : 0)}%`;
    item.append(pct);
    if (layout === "bars") {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "presentation");
      const fill = document.createElement("span");
      fill.style.width = `${(row.score * 100).toFixed(1)}%`;
      bar.append(fill);
      item.append(bar);
    }
  }
  return item;
}

// A task's answer into its section, as the result's `shown` says (null: a task this page cannot draw).
function showAnswer(section, shown) {
  if (!shown) return;
  taskTitles[section.dataset.task] = shown.title;
  section.querySelector(".task-name").textContent = shown.title;
  const list = section.querySelector(".answer");
  list.className = `answer ${shown.layout === "lines" ? "lines" : "bars"}`;
  if (shown.rows.length) {
    list.replaceChildren(...shown.rows.map((row) => answerRow(row, shown.layout)));
  } else {
    const item = document.createElement("li");
    item.className = "none";
    item.textContent = shown.empty;
    list.replaceChildren(item);
  }
}
