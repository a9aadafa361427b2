// The live strip: the topics, the processors' group and its lag, from GET /api/pipeline every 2 s.
//
// The server reads Kafka at most once a second however many pages ask; when Kafka does not
// answer, the strip keeps its last numbers, greyed, says so, and keeps asking.
"use strict";

const PIPELINE_EVERY_MS = 2000;
const strip = document.getElementById("pipeline");

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function seconds(value) {
  return value === null || value === undefined ? "unknown" : `${value.toFixed(1)} s`;
}

function item(text, attributes = {}) {
  const li = document.createElement("li");
  li.textContent = text;                                    // names come from the server: text, never HTML
  Object.assign(li.dataset, attributes);
  return li;
}

function drawPipeline(snapshot) {
  strip.classList.remove("stale");
  strip.querySelector(".age").textContent = snapshot.age_s > 3 ? `(as of ${Math.round(snapshot.age_s)} s ago)` : "";
  strip.querySelector(".topics").replaceChildren(...Object.entries(snapshot.topics).map(([name, topic]) => {
    if (!topic.exists) return item(`${name}: missing (labkit topics create)`, {topic: name});
    const li = item(`${name}: `, {topic: name});
    const count = document.createElement("span");
    count.className = "partitions";
    count.textContent = plural(topic.partitions, "partition", "partitions");
    const ends = document.createElement("span");
    ends.className = "ends";
    ends.textContent = ` · end offsets ${topic.end_offsets.join(" / ")}`;
    li.append(count, ends);
    return li;
  }));
  const members = snapshot.group.members;
  const group = strip.querySelector(".group");
  if (members === null) {
    group.textContent = `Group ${snapshot.group.id}: members unknown (the broker did not list them)`;
  } else {
    const names = Object.entries(members).map(([id, owned]) => `${id} (${owned.join(", ") || "no partitions"})`);
    group.textContent = `Group ${snapshot.group.id}: ${plural(names.length, "member", "members")}` +
      (names.length ? ` — ${names.join("; ")}` : " — nothing is scoring");
  }
  group.dataset.members = members === null ? "" : String(Object.keys(members).length);
  const lag = snapshot.lag;
  const line = strip.querySelector(".lag");
  line.dataset.records = lag.records === null ? "" : String(lag.records);
  line.textContent = lag.records === null
    ? `Lag on ${lag.topic}: the topic is missing`
    : `Lag on ${lag.topic}: ${plural(lag.records, "record", "records")}, oldest waiting ${seconds(lag.seconds)}` +
      (lag.partitions.length ? ` (${lag.partitions.map((p) => `p${p.partition}: ${p.lag_records}`).join(", ")})` : "");
  // Every other task's group reads the same topic with offsets of its own: its lag is its own.
  const others = (snapshot.groups || []).filter((g) => g.id !== snapshot.group.id);
  strip.querySelector(".groups").replaceChildren(...others.map((g) => item(
    g.lag.records === null
      ? `Group ${g.id} (${g.task}): the topic is missing`
      : `Group ${g.id} (${g.task}): lag ${plural(g.lag.records, "record", "records")}, oldest waiting ${seconds(g.lag.seconds)}`,
    {group: g.id, records: g.lag.records === null ? "" : String(g.lag.records)},
  )));
}

async function refreshPipeline() {
  if (!document.hidden) {                                    // a background tab does not ask
    try {
      const response = await fetch("/api/pipeline");
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || response.statusText);
      drawPipeline(body);
    } catch (error) {
      strip.classList.add("stale");
      strip.querySelector(".age").textContent = "(Kafka is not answering; asking again)";
      strip.title = error.message;
    }
  }
  setTimeout(refreshPipeline, PIPELINE_EVERY_MS);
}

refreshPipeline();
