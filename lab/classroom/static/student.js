// A student's page: their lab, their predictions and runs, their checks, their terminal.
// Every change is a fetch with the session's CSRF token; what happens arrives on /api/live.
"use strict";

let me = null;
let experiments = [];

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = me ? me.csrf : "";
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 401) { location.href = "/"; throw new Error("signed out"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// --- the lab ---

async function showLab() {
  let lab;
  try { lab = await api("/api/lab"); } catch (e) { setState(e.message, "bad"); return; }
  const body = document.querySelector("#hosts tbody");
  body.replaceChildren();
  if (lab.state !== "running") { setState("your lab is starting...", "waiting"); return; }
  for (const h of lab.hosts) {
    const ports = h.ports.map((p) => `${p.protocol} ${p.address}:${p.port} ${p.command || ""}`.trim());
    body.appendChild(row([h.name, h.interfaces.map((i) => i.ip).join(", "),
      el("td", h.state, h.state === "running" ? "ok" : "bad"),
      h.processes.join(", "), ports.join("\n") || "-"]));
  }
}

function setState(text, cls) {
  const s = document.getElementById("lab-state");
  s.textContent = "your lab: " + text;
  s.className = "state " + (cls || "");
}

function happening(h) {
  const feed = document.getElementById("traffic");
  let text = h.kind;
  if (h.kind === "socket" || h.event) {
    const e = h.event || h;
    text = `${e.host || ""} ${e.op || ""} ${e.proto || ""} ${e.peer || e.local || ""} ${e.outcome || e.error || ""}`;
  } else if (h.kind === "experiment") {
    text = `experiment ${h.name}: ${h.phase}` + (h.passed !== undefined ? (h.passed ? " (passed)" : " (a claim failed)") : "");
  }
  feed.appendChild(el("li", text.replace(/\s+/g, " ").trim()));
  while (feed.children.length > 200) feed.removeChild(feed.firstChild);
  feed.scrollTop = feed.scrollHeight;
}

// --- predictions and runs ---

function showExperiment() {
  const name = document.getElementById("experiment").value;
  const e = experiments.find((x) => x.name === name);
  const body = document.querySelector("#claims tbody");
  body.replaceChildren();
  document.getElementById("question").textContent = e ? e.question : "";
  if (!e) return;
  for (const c of e.claims) {
    const yes = el("input"); yes.type = "radio"; yes.name = "claim-" + c.id; yes.value = "true";
    const no = el("input"); no.type = "radio"; no.name = "claim-" + c.id; no.value = "false";
    const tdYes = el("td"); tdYes.appendChild(yes);
    const tdNo = el("td"); tdNo.appendChild(no);
    const tr = row([c.text, tdYes, tdNo]);
    tr.dataset.claim = c.id;
    body.appendChild(tr);
  }
  answered();
}

function answers() {
  const out = {};
  for (const tr of document.querySelectorAll("#claims tbody tr")) {
    const picked = tr.querySelector("input:checked");
    if (!picked) return null;
    out[tr.dataset.claim] = picked.value === "true";
  }
  return out;
}

function answered() {
  const ready = answers() !== null;
  document.getElementById("run").disabled = !ready;
  document.getElementById("run-note").textContent = ready ? "" : "predict every claim first";
}

async function runExperiment(event) {
  event.preventDefault();
  const picked = answers();
  if (!picked) return;
  const note = document.getElementById("run-note");
  try {
    const body = await api("/api/runs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ experiment: document.getElementById("experiment").value, answers: picked }) });
    note.textContent = `prediction stored; run ${body.run} queued`;
    showRuns();
  } catch (e) { note.textContent = e.message; }
}

async function uploadCheck(event) {
  event.preventDefault();
  const note = document.getElementById("upload-note");
  const file = document.getElementById("file").files[0];
  if (!file) { note.textContent = "choose your server's .py file"; return; }
  const form = new FormData();
  form.append("role", document.getElementById("role").value);
  form.append("file", file, file.name);
  try {
    const body = await api("/api/checks", { method: "POST", body: form });
    note.textContent = `check ${body.run} queued`;
    showRuns();
  } catch (e) { note.textContent = e.message; }
}

const places = {};

function stateText(r) {
  if (r.state === "queued") return `queued (${places[r.id] || r.place || "?"} in line)`;
  return r.state;
}

function outcome(r) {
  if (r.state !== "done") return el("td", r.error || "", r.error ? "bad" : "");
  return el("td", r.passed ? "every claim held" : "a claim failed", r.passed ? "ok" : "bad");
}

async function showRuns() {
  const runs = await api("/api/runs");
  const body = document.querySelector("#run-list tbody");
  body.replaceChildren();
  for (const r of runs) {
    const link = el("a", r.id); link.href = "#run-" + r.id;
    link.addEventListener("click", (ev) => { ev.preventDefault(); showRun(r.id); });
    const first = el("td"); first.appendChild(link);
    const tr = row([first, `${r.kind} ${r.what}${r.upload_name ? " (" + r.upload_name + ")" : ""}`,
      el("td", stateText(r), r.state), r.progress, outcome(r)]);
    tr.id = "run-" + r.id;
    body.appendChild(tr);
  }
}

async function showRun(id) {
  const r = await api("/api/runs/" + id);
  const box = document.getElementById("run-detail");
  box.replaceChildren(el("h3", `run ${r.id}: ${r.kind} ${r.what}: ${r.state}`));
  if (!r.result) { box.appendChild(el("p", r.error || r.progress)); return; }
  const table = el("table");
  table.appendChild(row([el("th", "claim or property"), el("th", "held"), el("th", "you predicted"), el("th", "observed")]));
  for (const c of r.result.checks) {
    const judged = c.judged === undefined || c.judged;
    const predicted = r.answers && c.id in r.answers ? (r.answers[c.id] ? "holds" : "does not") : "";
    table.appendChild(row([c.claim, el("td", judged ? (c.held ? "held" : "failed") : "not judged", c.held ? "held" : "failed"),
      predicted, c.observed]));
  }
  box.appendChild(table);
  if (r.result.predictions) box.appendChild(el("p", `${r.result.predictions.right} of ${r.result.predictions.total} predictions right`));
}

// --- what happens, live ---

function live() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.kind === "lab") { setState(msg.text, msg.error ? "bad" : msg.up ? "ok" : "waiting"); if (msg.up) showLab(); }
    else if (msg.kind === "queue") { places[msg.run] = msg.place; const tr = document.getElementById("run-" + msg.run);
      if (tr) tr.children[2].textContent = `queued (${msg.place} in line)`; }
    else if (msg.kind === "progress") { const tr = document.getElementById("run-" + msg.run);
      if (tr) { tr.children[2].textContent = "running"; tr.children[3].textContent = msg.text; } else showRuns(); }
    else if (msg.kind === "run") { showRuns(); showRun(msg.run); showLab(); }
    else if (msg.kind === "happening") happening(msg.happening);
  };
  ws.onclose = () => setTimeout(live, 2000);
}

// --- the terminal ---

function openTerminal() {
  const box = document.getElementById("terminal");
  box.replaceChildren();
  const term = new window.Terminal({ cursorBlink: true, fontSize: 14 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/terminal`);
  ws.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  ws.onopen = () => ws.send(JSON.stringify({ resize: [term.rows, term.cols] }));
  ws.onmessage = (m) => term.write(typeof m.data === "string" ? m.data : new Uint8Array(m.data));
  ws.onclose = () => term.write("\r\n[closed]\r\n");
  term.onData((d) => { if (ws.readyState === 1) ws.send(encoder.encode(d)); });
  term.onResize((s) => { if (ws.readyState === 1) ws.send(JSON.stringify({ resize: [s.rows, s.cols] })); });
  window.addEventListener("resize", () => fit.fit());
  term.focus();
  window.socklabTerminal = term; // for a test to read what the terminal shows
}

// --- start ---

async function start() {
  me = await api("/api/me");
  document.getElementById("who").textContent = `${me.name} (${me.id})`;
  for (const r of me.roles) document.getElementById("role").appendChild(el("option", r));
  experiments = await api("/api/experiments");
  const select = document.getElementById("experiment");
  for (const e of experiments) {
    const o = el("option", e.name + (e.lacking.length ? " (not in this topology)" : ""));
    o.value = e.name; o.disabled = e.lacking.length > 0;
    select.appendChild(o);
  }
  select.addEventListener("change", showExperiment);
  document.querySelector("#claims").addEventListener("change", answered);
  document.getElementById("prediction").addEventListener("submit", runExperiment);
  document.getElementById("upload").addEventListener("submit", uploadCheck);
  document.getElementById("open-terminal").addEventListener("click", openTerminal);
  document.getElementById("signout").addEventListener("click", async () => {
    await api("/api/signout", { method: "POST" }); location.href = "/";
  });
  showExperiment();
  live();
  showLab();
  showRuns();
  setInterval(showLab, 5000);
}

start();
