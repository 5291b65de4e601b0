// socklab's web view: a run, one step at a time. A recorded run opens paused at its first
// step; a run started from the page can be stepped through once it ends. A step is one
// happening of the run's time line (a socket call, a frame, a fault, in time order): it is
// marked in "what happened" and in the frames list, drawn as a hop on the topology (its
// sender and receiver named, not only coloured), said in words ("step 12 of 253: ...")
// and announced in the live region, and a frame opens in the layers panel (layers.js).
// Keys: Space plays or pauses, ← → step, Home End; the scrubber is an <input type=range>.
// Every event, live ones too, is announced in #announce as one sentence.
// Loaded before app.js, whose helpers ($, html, svg, text, api, pointOf...) it calls.
"use strict";

const steps = {
  open: false,
  items: [], // the time line: {t, kind: "socket"|"frame"|"fault", event|frame+detail+decision|text}
  at: -1,
  rows: [], // step -> its row in "what happened" or the frames list
  lastSocket: [], // step -> the latest socket call at or before it (-1: none)
  lastFrame: [], // ...and the latest frame
  marked: [],
  names: {}, // address -> host name, from the run
  playing: false,
  timer: null,
  title: "",
  live: { happenings: document.createElement("ol"), frames: document.createElement("ol") },
};
const MAX_ANNOUNCED = 5;

// ---------- sentences: what a screen reader says, and the page says in words ----------

const OUTCOME_WORDS = {
  ECONNREFUSED: (p) => (p === "udp" ? "ECONNREFUSED (ICMP port unreachable)" : "ECONNREFUSED (RST)"),
  ECONNRESET: () => "ECONNRESET (RST)",
  EPIPE: () => "EPIPE (BrokenPipeError)",
  eof: () => "EOF (the peer closed)",
  timeout: () => "timeout (silence)",
};

function where(address, from) {
  // "shouthost:8080" for an address, by the run's names first, else by the topology drawn
  const ip = ipOf(address);
  const port = portOf(address);
  const found = steps.open && steps.names[ip] ? { host: steps.names[ip], port } : hostOfAddress(address, from);
  return found;
}

function sentence(e) {
  const protocol = e.protocol || "tcp";
  const outcome = OUTCOME_WORDS[e.outcome] ? OUTCOME_WORDS[e.outcome](protocol) : e.outcome;
  const bytes = e.outcome === "ok" && e.nbytes !== null && e.nbytes !== undefined ? `, ${e.nbytes} B` : "";
  if (!e.remote) return `${e.host} ${e.op} (${protocol} socket ${e.sock}): ${outcome}${bytes}`;
  const peer = where(e.remote, e.host);
  return `${e.host} → ${peer.host}:${peer.port} ${e.op}: ${outcome}${bytes}`;
}

function itemSentence(item) {
  if (item.kind === "socket") return sentence(item.event);
  if (item.kind === "frame") {
    const f = item.frame;
    return `frame ${f.number}: ${f.from} → ${f.to} ${f.summary}${item.decision ? `; ${item.decision}` : ""}`;
  }
  return item.text;
}

function announce(words, replace) {
  const region = $("announce");
  const line = html("p", {}, words);
  if (replace) region.replaceChildren(line);
  else region.appendChild(line);
  while (region.children.length > MAX_ANNOUNCED) region.firstChild.remove();
}

// Live happenings, one sentence each (called by app.js for everything the server sends).
function announceHappening(h) {
  if (h.kind === "socket") h.events.forEach((e) => announce(sentence(e), false));
  else if (h.kind === "fault") announce(`fault: ${h.action} ${h.target}`, false);
  else if (h.kind === "link") announce(`link of ${h.host}: ${h.impairment}`, false);
  else if (h.kind === "experiment") announce(`experiment ${h.name}: ${h.phase}${h.phase === "end" ? (h.passed ? ", every claim held" : ", a claim did not hold") : ""}`, false);
}

function eventLine(e) {
  const t = `${(e.t * 1000).toFixed(1)} ms`;
  const bytes = e.nbytes !== null && e.nbytes !== undefined ? ` ${e.nbytes} B` : "";
  return `${t}  ${e.host}  ${e.sock}  ${e.op}  ${e.local || ""} → ${e.remote || ""}  ${e.outcome}${bytes}`;
}

// While a run is stepped, what arrives live is kept aside, and back when the run closes.
function liveList(name) {
  return steps.open ? steps.live[name] : $(name);
}

// ---------- opening a run ----------

function fillResults(results) {
  const select = $("replay-select");
  select.innerHTML = "";
  for (const r of results) {
    const mark = r.error ? " (unreadable)" : r.passed ? "" : " (a claim did not hold)";
    select.appendChild(html("option", { value: r.id }, `${r.experiment || r.file} ${r.started_at || ""}${mark}${r.captured ? ", with frames" : ""}`));
  }
}

async function openRecorded() {
  const id = $("replay-select").value;
  if (id === "") return;
  pauseSteps();
  $("replay-info").textContent = "loading…";
  let r;
  try {
    r = await api(`/api/results/${id}`);
  } catch (e) {
    $("replay-info").textContent = e.message;
    return;
  }
  if (!live) draw(r.topology);
  $("replay-info").textContent = `${r.experiment}: ${r.question}  (${r.timeline.length} steps)`;
  lastResult = r;
  if (r.cells && r.cells.length) showMatrix(r.cells, r.checks);
  $("ladder").textContent = r.ladder.length ? r.ladder.join("\n") : "no capture was taken of this run (lab run --capture takes one)";
  openSteps(r.experiment, r.timeline, r.names || {});
}

function openSteps(title, timeline, names, play) {
  pauseSteps();
  if (!steps.open) {
    steps.live.happenings.replaceChildren(...$("happenings").childNodes);
    steps.live.frames.replaceChildren(...$("frames").childNodes);
  }
  Object.assign(steps, { open: true, items: timeline, names, title, at: -1, rows: [], marked: [], lastSocket: [], lastFrame: [] });
  const happenings = $("happenings");
  const frames = $("frames");
  happenings.replaceChildren();
  frames.replaceChildren();
  let socketAt = -1;
  let frameAt = -1;
  timeline.forEach((item, i) => {
    let row;
    if (item.kind === "frame") {
      const f = item.frame;
      row = html("li", { "data-frame": f.number }, `${f.from} → ${f.to}: ${f.summary}${f.capture ? `  [${f.capture}]` : ""}`);
      frames.appendChild(row);
      frameAt = i;
    } else {
      const bad = item.kind === "socket" && !["ok", "eof"].includes(item.event.outcome);
      row = html("li", { class: item.kind === "fault" ? "fault" : bad ? "bad" : "" }, item.kind === "socket" ? eventLine(item.event) : item.text);
      happenings.appendChild(row);
      if (item.kind === "socket") socketAt = i;
    }
    row.dataset.step = i + 1;
    row.tabIndex = -1;
    row.addEventListener("click", () => gotoStep(i));
    steps.rows.push(row);
    steps.lastSocket.push(socketAt);
    steps.lastFrame.push(frameAt);
  });
  $("stepper").classList.remove("hidden");
  $("scrubber").max = Math.max(1, timeline.length);
  $("step-goto").max = Math.max(1, timeline.length);
  if (frameAt >= 0) frames.closest("details").open = true;
  if ($("matrix").classList.contains("hidden")) showView("happenings"); // a matrix stays up
  gotoStep(0);
  $("step-play").focus();
  if (play) playSteps();
}

function closeSteps() {
  pauseSteps();
  clearHop();
  steps.open = false;
  $("happenings").replaceChildren(...steps.live.happenings.childNodes);
  $("frames").replaceChildren(...steps.live.frames.childNodes);
  $("stepper").classList.add("hidden");
  $("inspect").classList.add("hidden");
  announce(`closed ${steps.title}: back to the live view`, true);
}

// ---------- going to a step ----------

function gotoStep(index, animated) {
  if (!steps.open) return;
  if (!steps.items.length) {
    $("step-position").textContent = "step 0 of 0";
    $("step-now").textContent = `${steps.title}: nothing was recorded to step through`;
    return;
  }
  const i = Math.max(0, Math.min(steps.items.length - 1, index));
  steps.at = i;
  const item = steps.items[i];
  const n = steps.items.length;
  const position = `step ${i + 1} of ${n}`;
  const words = `${(item.t * 1000).toFixed(1)} ms: ${itemSentence(item)}`;
  $("step-position").textContent = position;
  $("step-now").textContent = `${steps.title}, ${position} (${item.kind}), ${words}`;
  $("scrubber").value = i + 1;
  $("scrubber").setAttribute("aria-valuetext", `${position}: ${words}`);
  if (document.activeElement !== $("step-goto")) $("step-goto").value = i + 1; // not mid-typing
  $("stepper").dataset.step = i + 1;
  markRows(i);
  drawHop(item);
  const f = steps.lastFrame[i];
  if (f >= 0) showStepFrame(steps.items[f], f === i);
  else $("inspect").classList.add("hidden");
  announce(`${position}: ${itemSentence(item)}`, true);
  if (animated) animateItem(item);
}

function markRows(i) {
  for (const row of steps.marked) {
    row.classList.remove("current", "context");
    row.removeAttribute("aria-current");
    row.tabIndex = -1;
  }
  steps.marked = [];
  const mark = (j, cls) => {
    if (j < 0) return;
    const row = steps.rows[j];
    row.classList.add(cls);
    if (cls === "current") row.setAttribute("aria-current", "step");
    row.tabIndex = 0;
    steps.marked.push(row);
    scrollWithin(row);
  };
  mark(i, "current");
  const item = steps.items[i];
  if (item.kind !== "socket") mark(steps.lastSocket[i], "context");
  if (item.kind !== "frame") mark(steps.lastFrame[i], "context");
}

function scrollWithin(row) {
  // Scroll the list, never the page: stepping must not move what the reader looks at.
  const list = row.parentElement;
  if (row.offsetTop < list.scrollTop || row.offsetTop + row.offsetHeight > list.scrollTop + list.clientHeight)
    list.scrollTop = Math.max(0, row.offsetTop - list.clientHeight / 2);
}

async function showStepFrame(item, exact) {
  if (!item.detail) {
    item.detail = await api(`/api/frames/${item.frame.number}`).catch((e) => ({ error: `frame ${item.frame.number}: ${e.message}` }));
    if (steps.items[steps.lastFrame[steps.at]] !== item) return; // stepped on meanwhile
  }
  showLayers(item.detail, item.decision || item.detail.decision, item.frame);
  $("inspect").dataset.exact = exact ? "yes" : "no";
  if (!exact) $("inspect-title").textContent += " (the latest frame before this step)";
}

// ---------- the hop on the topology, drawn still ----------

function clearHop() {
  document.querySelectorAll("#topology .hop").forEach((n) => n.remove());
  for (const cls of ["step-from", "step-to", "step-port"])
    document.querySelectorAll(`#topology .${cls}`).forEach((n) => n.classList.remove(cls));
}

function hopOf(item) {
  if (item.kind === "socket") {
    const e = item.event;
    if (!e.remote) return { from: e.host, to: e.host, label: `${e.op}: ${e.outcome}` };
    const peer = where(e.remote, e.host);
    const protocol = e.protocol || "tcp";
    const back = RECEIVES.includes(e.op);
    const label = `${e.op}: ${OUTCOME_WORDS[e.outcome] ? OUTCOME_WORDS[e.outcome](protocol) : e.outcome}`;
    return back
      ? { from: peer.host, to: e.host, label, fromPort: [protocol, peer.port] }
      : { from: e.host, to: peer.host, label, toPort: [protocol, peer.port] };
  }
  if (item.kind === "frame") {
    const f = item.frame;
    const from = where(f.src, "docker-host").host;
    const to = where(f.dst, "docker-host").host;
    const l4 = item.detail && item.detail.layers ? item.detail.layers.filter((l) => ["TCP", "UDP"].includes(l.name)).pop() : null;
    const hop = { from, to, label: `frame ${f.number}: ${f.summary}` };
    if (l4) {
      hop.toPort = [l4.name.toLowerCase(), l4.fields.dst_port];
      hop.fromPort = [l4.name.toLowerCase(), l4.fields.src_port];
    }
    return hop;
  }
  const target = topo && topo.processes.find((p) => item.text.includes(p.name));
  const host = target ? target.host : Object.keys(places).find((h) => item.text.includes(h)) || "docker-host";
  return { from: host, to: host, label: item.text };
}

function boxOf(host) {
  // A host's box in the drawing: {x, y, w, h} with x its centre and y its top.
  const p = places[host] || places["docker-host"];
  if (!p) return null;
  return host === "docker-host" || !places[host] ? { x: p.x, y: p.y - p.h, w: p.w, h: p.h } : p;
}

function edgeToward(box, other) {
  // Where the line from a box's centre to another point leaves the box.
  const c = { x: box.x, y: box.y + box.h / 2 };
  const dx = other.x - c.x;
  const dy = other.y - c.y;
  const k = Math.min(dx ? box.w / 2 / Math.abs(dx) : Infinity, dy ? box.h / 2 / Math.abs(dy) : Infinity, 1);
  return { x: c.x + dx * k, y: c.y + dy * k };
}

function drawHop(item) {
  clearHop();
  if (!topo || !item) return;
  const hop = hopOf(item);
  const root = $("topology");
  const g = svg("g", { class: `hop ${item.kind}`, "data-hop-from": hop.from, "data-hop-to": hop.to, "data-step": steps.at + 1 }, root);
  const portNode = (host, p) => p && portAt[`${host}|${p[0]}|${p[1]}`];
  const from = boxOf(hop.from);
  const to = boxOf(hop.to);
  if (!from || !to) return;
  for (const [host, box, cls, tag] of [[hop.from, from, "step-from", "▲ sender"], [hop.to, to, "step-to", "▼ receiver"]]) {
    const node = document.querySelector(`#topology .host[data-host="${CSS.escape(host)}"]`);
    if (node) node.classList.add(cls);
    if (hop.from !== hop.to) text(box.x - box.w / 2 + 4, box.y + box.h + 15, tag, "hop-tag", g);
  }
  for (const [host, p] of [[hop.to, hop.toPort], [hop.from, hop.fromPort]]) {
    const at = portNode(host, p);
    if (at) at.node.classList.add("step-port");
  }
  let labelAt = { x: from.x, y: from.y - 12 };
  if (hop.from !== hop.to) {
    const a = portNode(hop.from, hop.fromPort) || edgeToward(from, { x: to.x, y: to.y + to.h / 2 });
    const b = portNode(hop.to, hop.toPort) || edgeToward(to, { x: from.x, y: from.y + from.h / 2 });
    svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "hop-line" }, g);
    const angle = Math.atan2(b.y - a.y, b.x - a.x);
    const tip = (d, turn) => `${b.x - d * Math.cos(angle + turn)},${b.y - d * Math.sin(angle + turn)}`;
    svg("polygon", { points: `${b.x},${b.y} ${tip(14, 0.4)} ${tip(14, -0.4)}`, class: "hop-head" }, g);
    labelAt = { x: (a.x + b.x) / 2, y: Math.min(from.y, to.y) - 12 }; // above the boxes
  }
  const back = svg("rect", { class: "hop-label-box", height: 18, y: labelAt.y - 13 }, g);
  const label = text(labelAt.x, labelAt.y, `step ${steps.at + 1}: ${hop.label}`, "hop-label", g);
  const width = label.getComputedTextLength() + 10;
  const left = Math.max(4, Math.min(W - width - 4, labelAt.x - width / 2));
  label.setAttribute("x", left + 5);
  back.setAttribute("x", left);
  back.setAttribute("width", width);
}

// app.js redraws the topology when it changes: the step's hop is drawn again on it.
function stepRedraw() {
  if (steps.open && steps.at >= 0) drawHop(steps.items[steps.at]);
}

function animateItem(item) {
  if (item.kind === "socket") animate(item.event);
  else if (item.kind === "frame") {
    const hop = hopOf(item);
    travel(pointOf(hop.from, "", 0), pointOf(hop.to, "", 0), "frame", item.frame.summary, 700);
  } else badge(hopOf(item).from, item.text, "warn");
}

// ---------- playing ----------

function playSteps() {
  if (!steps.open) return;
  if (steps.at >= steps.items.length - 1) gotoStep(0);
  steps.playing = true;
  setPlayButton();
  tick();
}

function tick() {
  if (!steps.playing) return;
  if (steps.at >= steps.items.length - 1) {
    pauseSteps();
    announce(`end of ${steps.title}: step ${steps.items.length} of ${steps.items.length}`, true);
    return;
  }
  const speed = Number($("replay-speed").value) || 1;
  const gap = (steps.items[steps.at + 1].t - steps.items[steps.at].t) / speed;
  steps.timer = setTimeout(() => {
    gotoStep(steps.at + 1, true);
    tick();
  }, Math.max(0, gap * 1000));
}

function pauseSteps() {
  steps.playing = false;
  clearTimeout(steps.timer);
  setPlayButton();
}

function setPlayButton() {
  const b = $("step-play");
  b.textContent = steps.playing ? "‖ Pause" : "▶ Play";
  b.setAttribute("aria-label", steps.playing ? "Pause (Space)" : "Play (Space)");
  b.setAttribute("aria-pressed", steps.playing ? "true" : "false");
}

function stepBy(delta) {
  pauseSteps();
  gotoStep(steps.at + delta);
}

function onStepKey(ev) {
  if (!steps.open || ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const target = ev.target;
  // Fields keep their own keys (the scrubber steps by itself), and Space presses a button.
  if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName) || target.isContentEditable) return;
  if (ev.key === " " && ["BUTTON", "SUMMARY", "A"].includes(target.tagName)) return;
  if (ev.key === " ") steps.playing ? pauseSteps() : playSteps();
  else if (ev.key === "ArrowRight") stepBy(1);
  else if (ev.key === "ArrowLeft") stepBy(-1);
  else if (ev.key === "Home") stepBy(-steps.items.length);
  else if (ev.key === "End") stepBy(steps.items.length);
  else return;
  ev.preventDefault();
}

// In "what happened" and the frames list: arrows up and down move along, Enter goes there.
function onListKey(ev) {
  const row = ev.target;
  if (!steps.open || row.tagName !== "LI" || !row.dataset.step) return;
  if (ev.key === "Enter" || ev.key === " ") {
    pauseSteps();
    gotoStep(Number(row.dataset.step) - 1);
    row.focus();
  } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    const next = ev.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
    if (next) {
      next.tabIndex = 0;
      next.focus();
    }
  } else return;
  ev.preventDefault();
}

// ---------- a run started from the page, kept as it happens to step through after ----------

const recording = { name: "", t0: null, items: [], ended: false };

function recordRun(name) {
  Object.assign(recording, { name, t0: null, items: [], ended: false });
}

function observe(h) {
  if (!recording.name) return;
  if (h.kind === "experiment" && h.name === recording.name) {
    if (h.phase === "start") recording.t0 = h.t0;
    if (h.phase === "end") recording.ended = true;
    return;
  }
  if (recording.t0 === null || recording.ended) return;
  const t = (at) => at - recording.t0;
  if (h.kind === "socket")
    for (const e of h.events) recording.items.push({ t: h.t0 != null ? h.t0 + e.t - recording.t0 : t(h.at), kind: "socket", event: e });
  else if (h.kind === "fault") recording.items.push({ t: t(h.at), kind: "fault", text: `fault: ${h.action} ${h.target}` });
  else if (h.kind === "frame") recording.items.push({ t: t(h.at), kind: "frame", frame: h.frame, detail: null, decision: null });
}

async function offerSteps(r) {
  // The journal reaches the page a moment after the run's answer: wait for its end.
  for (let waited = 0; !recording.ended && waited < 3000; waited += 100) await new Promise((ok) => setTimeout(ok, 100));
  const timeline = recording.items.slice().sort((a, b) => a.t - b.t);
  recording.name = "";
  if (!timeline.length) return;
  const b = html("button", { type: "button", id: "step-run" }, `Step through this run (${timeline.length} steps)`);
  b.addEventListener("click", () => openSteps(`${r.experiment} (run from this page)`, timeline, {}));
  $("run-result").appendChild(b);
}

// ---------- wiring ----------

function setupSteps() {
  $("replay-button").addEventListener("click", openRecorded);
  $("replay-stop").addEventListener("click", pauseSteps);
  $("step-first").addEventListener("click", () => stepBy(-steps.items.length));
  $("step-back").addEventListener("click", () => stepBy(-1));
  $("step-play").addEventListener("click", () => (steps.playing ? pauseSteps() : playSteps()));
  $("step-forward").addEventListener("click", () => stepBy(1));
  $("step-last").addEventListener("click", () => stepBy(steps.items.length));
  $("step-close").addEventListener("click", closeSteps);
  $("scrubber").addEventListener("input", () => {
    pauseSteps();
    gotoStep(Number($("scrubber").value) - 1);
  });
  $("step-goto").addEventListener("change", () => {
    const n = parseInt($("step-goto").value, 10);
    if (Number.isNaN(n)) return;
    pauseSteps();
    gotoStep(n - 1);
  });
  $("happenings").addEventListener("keydown", onListKey);
  $("frames").addEventListener("keydown", onListKey);
  $("layers").addEventListener("keydown", onLayersKey);
  document.addEventListener("keydown", onStepKey);
}
