// socklab's web view: the topology, and every message finding its process, as it happens.
// No build step and nothing from elsewhere: index.html, style.css, this file, and the two
// loaded before it: step.js (runs stepped through, and the live region) and layers.js
// (a frame's layers beside its bytes).
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const W = 1100; // the drawing's width, in its own units

let topo = null; // the topology drawn
let drawn = ""; // ...as JSON, so that an unchanged one is not drawn again
let live = false;
let places = {}; // host name -> {x, y, w, h}; "docker-host" too
let portAt = {}; // "host|tcp|80" -> {x, y, owner}
let selected = null; // {kind: "host"|"process", name}
let experiments = [];
let lastResult = null; // the latest experiment result or replay, for the matrix view

// ---------- talking to the server ----------

async function api(path, body) {
  const options = { headers: { "X-Lab-Token": token } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok || data.error) throw new Error(data.error || response.statusText);
  return data.result !== undefined ? data.result : data;
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/api/live?token=${encodeURIComponent(token)}`);
  ws.onopen = () => setConnection(live ? "live" : "replays only", live ? "live" : "replay");
  ws.onclose = () => {
    setConnection("disconnected: is `lab web` still running?", "");
    setTimeout(connect, 2000);
  };
  ws.onmessage = (message) => onHappening(JSON.parse(message.data));
}

function setConnection(text, kind) {
  $("connection").textContent = text;
  $("connection").className = `pill ${kind}`;
}

// ---------- small helpers ----------

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function text(x, y, content, cls, parent) {
  const node = svg("text", { x, y, class: cls || "" }, parent);
  node.textContent = content;
  return node;
}

function html(tag, attrs, content) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (content !== undefined) node.textContent = content;
  return node;
}

function ipOf(address) {
  return (address || "").replace(/:\d+$/, "");
}

function portOf(address) {
  const m = /:(\d+)$/.exec(address || "");
  return m ? Number(m[1]) : null;
}

function log(line, cls) {
  const list = liveList("happenings"); // set aside while a run is stepped (step.js)
  list.prepend(html("li", { class: cls || "" }, line));
  while (list.children.length > 400) list.lastChild.remove();
}

// ---------- drawing the topology ----------

function draw(t) {
  const json = JSON.stringify(t, (k, v) => (k === "state" ? undefined : v));
  topo = t;
  $("project").textContent = t.project ? `project ${t.project}` : "";
  if (json === drawn) {
    applyStates(Object.fromEntries([...t.hosts, ...t.processes].map((x) => [x.name, x.state])));
    return;
  }
  drawn = json;
  const root = $("topology");
  root.innerHTML = "";
  places = {};
  portAt = {};
  const nets = t.networks.map((n) => n.name);
  const netY = {};
  nets.forEach((n, i) => (netY[n] = 130 + i * 260));

  // The Docker host, and what it publishes.
  const dh = svg("g", { class: "dockerhost", "data-host": "docker-host" }, root);
  svg("rect", { x: 20, y: 10, width: W - 40, height: 58 }, dh);
  text(34, 30, "Docker host (this machine): its published ports lead into the lab", "title", dh);
  const published = [];
  for (const host of t.hosts)
    for (const p of host.published || [])
      if (p.bound) published.push(`127.0.0.1:${p.bound}/${p.protocol} → ${host.name}:${p.container_port}`);
  text(34, 52, published.join("    ") || "nothing published", "published", dh);
  places["docker-host"] = { x: W / 2, y: 68, w: W - 40, h: 58 };

  // The networks, as bars.
  for (const n of t.networks) {
    const y = netY[n.name];
    svg("line", { x1: 30, y1: y, x2: W - 30, y2: y, class: "network-line" }, root);
    text(34, y - 8, `${n.name}  ${n.subnet || ""}`, "network-label", root);
  }

  // Hosts, in a row below their first network.
  const rows = {};
  for (const host of t.hosts) {
    const first = host.interfaces.length ? host.interfaces[0].network : nets[0];
    (rows[first] = rows[first] || []).push(host);
  }
  for (const [net, hosts] of Object.entries(rows)) {
    hosts.forEach((host, i) => {
      const x = (W / (hosts.length + 1)) * (i + 1);
      drawHost(root, host, x, netY[net] + 34, netY, t);
    });
  }
  // The drawing is as tall as what was drawn.
  const bottom = Math.max(...Object.values(places).map((p) => p.y + p.h), ...Object.values(netY)) + 30;
  root.setAttribute("viewBox", `0 0 ${W} ${bottom}`);
  root.style.height = `${Math.max(360, bottom * 0.62)}px`;
  applyStates(Object.fromEntries([...t.hosts, ...t.processes].map((x) => [x.name, x.state])));
  fillForms(t);
  stepRedraw();
}

function drawHost(root, host, cx, top, netY, t) {
  const processes = t.processes.filter((p) => p.host === host.name);
  const ports = (host.ports || []).filter((r) => r.address !== "127.0.0.11");
  const rows = Math.max(processes.length, 1);
  const w = 230;
  const h = 58 + rows * 44;
  const x = cx - w / 2;
  const g = svg("g", { class: "host", "data-host": host.name, "data-ip": host.interfaces.map((i) => i.ip).join(" ") }, root);
  // Attachments to each network (dashed when Docker says the host is off it).
  for (const iface of host.interfaces) {
    const off = host.attached && host.attached.length && !host.attached.includes(iface.network);
    const y = netY[iface.network];
    svg("line", { x1: cx, y1: top, x2: cx, y2: y, class: off ? "attach cut" : "attach" }, root).dataset.host = host.name;
  }
  svg("rect", { x, y: top, width: w, height: h, class: "box" }, g);
  text(x + 10, top + 18, host.name + (host.role === "client" ? "  (client)" : host.forwarding ? "  (router)" : ""), "title", g);
  text(x + 10, top + 34, host.interfaces.map((i) => i.ip).join(", "), "ip", g);
  const state = text(x + w - 10, top + 18, "", "ip state", g);
  state.setAttribute("text-anchor", "end");
  if (host.link) text(x + w - 10, top + 34, `link: ${host.link}`, "linkmark", g).setAttribute("text-anchor", "end");
  places[host.name] = { x: cx, y: top, w, h };
  g.addEventListener("click", (e) => {
    e.stopPropagation();
    select({ kind: "host", name: host.name });
  });
  processes.forEach((p, i) => {
    const py = top + 44 + i * 44;
    const pg = svg("g", { class: "process", "data-process": p.name }, g);
    svg("rect", { x: x + 8, y: py, width: 92, height: 36 }, pg);
    text(x + 14, py + 15, p.name, "", pg);
    const owned = ports.filter((r) => r.service === p.name);
    // A socket is a file descriptor: its number in the owner's table of open files.
    const fd = owned.length && owned[0].fd != null ? ` fd ${owned[0].fd}` : "";
    const pid = owned.length ? `pid ${owned[0].pid}${fd}` : "";
    text(x + 14, py + 30, pid, "ip", pg);
    pg.addEventListener("click", (e) => {
      e.stopPropagation();
      select({ kind: "process", name: p.name });
    });
    // This process's sockets: the host's port table, owner by owner.
    const declared = p.ports.map((q) => ({ protocol: q.transport, port: q.number, service: p.name }));
    const shown = owned.length ? owned : declared;
    shown.forEach((r, j) => {
      const bx = x + 108 + j * 60;
      const protocol = r.protocol.replace("6", "");
      const pg2 = svg("g", { class: `port ${protocol}`, "data-port": `${protocol}/${r.port}`, "data-owner": p.name, "data-host": host.name }, g);
      svg("rect", { x: bx, y: py + 6, width: 56, height: 24 }, pg2);
      text(bx + 4, py + 22, `${protocol}/${r.port}`, "", pg2);
      if (r.fd != null) svg("title", {}, pg2).textContent = `fd ${r.fd} of ${p.name} (pid ${r.pid})`;
      portAt[`${host.name}|${protocol}|${r.port}`] = { x: bx + 28, y: py + 18, owner: p.name, node: pg2 };
    });
  });
  // Sockets nobody of this host's processes owns (a server of the host itself, say).
  ports
    .filter((r) => !processes.some((p) => p.name === r.service))
    .forEach((r, j) => {
      const protocol = r.protocol.replace("6", "");
      const bx = x + w - 64;
      const by = top + h - 30 - j * 28;
      const pg2 = svg("g", { class: `port ${protocol}`, "data-port": `${protocol}/${r.port}`, "data-owner": r.service || r.command || "?", "data-host": host.name }, g);
      svg("rect", { x: bx, y: by, width: 56, height: 24 }, pg2);
      text(bx + 4, by + 16, `${protocol}/${r.port}`, "", pg2);
      portAt[`${host.name}|${protocol}|${r.port}`] = { x: bx + 28, y: by + 12, owner: r.service || r.command, node: pg2 };
    });
}

function applyStates(states) {
  for (const [name, state] of Object.entries(states)) {
    const host = document.querySelector(`.host[data-host="${name}"]`);
    const process = document.querySelector(`.process[data-process="${name}"]`);
    const node = host || process;
    if (!node) continue;
    node.classList.remove("down", "paused", "cut");
    node.dataset.state = state;
    if (["exited", "dead", "absent", "created", "removing"].includes(state)) node.classList.add("down");
    if (state === "paused") node.classList.add("paused");
    if (state === "cut off") node.classList.add("cut");
    if (host) host.querySelector(".state").textContent = state;
    if (process) process.querySelector("title")?.remove();
    if (process) svg("title", {}, process).textContent = `${name}: ${state}`;
  }
}

function select(what) {
  selected = what;
  document.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
  const node = document.querySelector(what.kind === "host" ? `.host[data-host="${what.name}"]` : `.process[data-process="${what.name}"]`);
  if (node) node.classList.add("selected");
  $("selected").textContent = `${what.kind} ${what.name}`;
  const buttons = $("fault-buttons");
  buttons.innerHTML = "";
  const kinds = what.kind === "host" ? ["kill", "stop", "start", "pause", "resume", "restart", "cut", "heal"] : ["kill", "stop", "start", "pause", "resume", "restart"];
  for (const kind of kinds) {
    const b = html("button", { "data-fault": kind }, kind);
    b.addEventListener("click", () => fault(kind, what.name));
    buttons.appendChild(b);
  }
}

// ---------- what travels ----------

function hostOfAddress(address, from) {
  const ip = ipOf(address);
  if (ip === "127.0.0.1" || ip === "0.0.0.0") {
    // From the Docker host, through a published port: the host that publishes it.
    const port = portOf(address);
    for (const host of (topo && topo.hosts) || [])
      for (const p of host.published || []) if (p.bound === port) return { host: host.name, port: p.container_port };
    return { host: "docker-host", port };
  }
  for (const host of (topo && topo.hosts) || [])
    if (host.interfaces.some((i) => i.ip === ip)) return { host: host.name, port: portOf(address) };
  if (/\.1$/.test(ip)) return { host: "docker-host", port: portOf(address) }; // a network's gateway
  return { host: from, port: portOf(address) };
}

function pointOf(host, protocol, port) {
  const at = portAt[`${host}|${protocol}|${port}`];
  if (at) return at;
  const p = places[host] || places["docker-host"];
  return { x: p.x, y: host === "docker-host" ? p.y : p.y + 10 };
}

function travel(from, to, cls, label, ms) {
  const root = $("topology");
  const g = svg("g", {}, root);
  const dot = svg(cls === "frame" ? "rect" : "circle", cls === "frame" ? { width: 10, height: 10, class: `traveller ${cls}` } : { r: 7, class: `traveller ${cls}` }, g);
  const tag = label ? text(0, 0, label, "", g) : null;
  const start = performance.now();
  return new Promise((done) => {
    function step(now) {
      const k = Math.min(1, (now - start) / ms);
      const x = from.x + (to.x - from.x) * k;
      const y = from.y + (to.y - from.y) * k;
      if (cls === "frame") {
        dot.setAttribute("x", x - 5);
        dot.setAttribute("y", y - 5);
      } else {
        dot.setAttribute("cx", x);
        dot.setAttribute("cy", y);
      }
      if (tag) {
        tag.setAttribute("x", x + 10);
        tag.setAttribute("y", y - 8);
      }
      if (k < 1) requestAnimationFrame(step);
      else {
        g.remove();
        done();
      }
    }
    requestAnimationFrame(step);
  });
}

function badge(host, words, kind) {
  const p = places[host] || places["docker-host"];
  if (!p) return;
  const g = svg("g", { class: `badge ${kind || ""}`, "data-badge": words }, $("topology"));
  const rect = svg("rect", { y: p.y - 26, height: 18 }, g);
  const label = text(0, p.y - 13, words, "", g);
  const width = label.getComputedTextLength() + 10;
  rect.setAttribute("x", p.x - width / 2);
  rect.setAttribute("width", width);
  label.setAttribute("x", p.x - width / 2 + 5);
  setTimeout(() => g.remove(), 2600);
}

function chosen(host, protocol, port) {
  const at = portAt[`${host}|${protocol}|${port}`];
  if (!at) return;
  at.node.classList.add("hit");
  const owner = document.querySelector(`.process[data-process="${at.owner}"]`);
  if (owner) owner.classList.add("chosen");
  setTimeout(() => {
    at.node.classList.remove("hit");
    if (owner) owner.classList.remove("chosen");
  }, 900);
}

const SENDS = ["connect", "send", "sendall", "sendto"];
const RECEIVES = ["recv", "recv_all", "recvfrom"];
const NAMES = {
  ECONNREFUSED: (p) => (p === "udp" ? "ICMP port unreachable → ECONNREFUSED" : "RST → ECONNREFUSED"),
  ECONNRESET: () => "RST → ECONNRESET",
  EPIPE: () => "EPIPE (BrokenPipeError)",
  eof: () => "EOF: the peer closed",
  timeout: () => "timeout: silence",
};

async function animate(e) {
  if (!topo) return;
  const sender = e.host;
  const target = hostOfAddress(e.remote, sender);
  const protocol = e.protocol || "tcp";
  const here = pointOf(sender, "", 0);
  const there = pointOf(target.host, protocol, target.port);
  const bad = !["ok", "eof"].includes(e.outcome);
  if (SENDS.includes(e.op)) {
    const label = e.op === "connect" ? (protocol === "tcp" ? "SYN" : "") : `${e.nbytes ?? ""} B`;
    await travel(here, there, "msg", label, 650);
    if (e.outcome === "ok") chosen(target.host, protocol, target.port);
    if (bad) badge(e.outcome === "ECONNREFUSED" ? target.host : sender, (NAMES[e.outcome] || (() => e.outcome))(protocol), "bad");
  } else if (RECEIVES.includes(e.op)) {
    if (e.outcome === "ok" && e.nbytes !== null) await travel(there, here, "reply", `${e.nbytes} B`, 650);
    else if (e.outcome === "ECONNREFUSED") {
      await travel(there, here, "reply", "ICMP", 500);
      badge(sender, NAMES.ECONNREFUSED(protocol), "bad");
    } else badge(sender, (NAMES[e.outcome] || (() => e.outcome))(protocol), e.outcome === "eof" ? "warn" : bad ? "bad" : "good");
  }
}

// Events are played one after another, faster when many wait.
const queue = [];
let playing = false;

function enqueue(events) {
  queue.push(...events);
  if (!playing) play();
}

async function play() {
  playing = true;
  while (queue.length) {
    const e = queue.shift();
    const gap = Math.max(40, 350 - queue.length * 20);
    animate(e);
    await new Promise((r) => setTimeout(r, gap));
  }
  playing = false;
}

function logEvent(e) {
  log(eventLine(e), ["ok", "eof"].includes(e.outcome) ? "" : "bad");
}

// ---------- what arrives over the WebSocket ----------

function onHappening(h) {
  observe(h); // a run started here, kept to step through once it ends
  announceHappening(h);
  if (h.kind === "topology") draw(h.topology);
  else if (h.kind === "states") applyStates(h.states);
  else if (h.kind === "socket") {
    h.events.forEach(logEvent);
    enqueue(h.events);
  } else if (h.kind === "fault") {
    log(`fault: ${h.action} ${h.target}`, "fault");
    badge(topo && topo.processes.find((p) => p.name === h.target) ? topo.processes.find((p) => p.name === h.target).host : h.target, `${h.action} ${h.target}`, "warn");
  } else if (h.kind === "link") log(`link of ${h.host}: ${h.impairment}${h.how ? ` (${h.how})` : ""}`, "fault");
  else if (h.kind === "experiment") log(`experiment ${h.name}: ${h.phase}${h.phase === "end" ? (h.passed ? ", every claim held" : ", a claim did not hold") : ""}`, "fault");
  else if (h.kind === "frame") showFrame(h.frame, null);
  else if (h.kind === "notice") $("notice").textContent = h.text;
}

function showFrame(frame, detail) {
  const item = html("li", { "data-frame": frame.number, tabindex: "0" }, `${frame.from} → ${frame.to}: ${frame.summary}`);
  const open = async () => {
    const data = detail || (await api(`/api/frames/${frame.number}`).catch((e) => ({ error: e.message })));
    showLayers(data, data.decision, frame);
  };
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => e.key === "Enter" && open());
  const list = liveList("frames");
  list.appendChild(item);
  while (list.children.length > 300) list.firstChild.remove();
  const from = pointOf(hostOfAddress(frame.src, "docker-host").host, "", 0);
  const to = pointOf(hostOfAddress(frame.dst, "docker-host").host, "", 0);
  travel(from, to, "frame", frame.summary, 700);
}

// ---------- the forms ----------

function fillForms(t) {
  const targets = $("send-target");
  const current = targets.value;
  targets.innerHTML = "";
  for (const e of t.endpoints || []) targets.appendChild(html("option", { value: e.label, "data-protocol": e.protocol }, `${e.label} (${e.number}/${e.transport} ${e.protocol})`));
  if (current) targets.value = current;
  const origins = $("send-origin");
  const origin = origins.value;
  origins.innerHTML = "";
  const client = t.hosts.find((h) => h.role === "client");
  for (const h of [client, ...t.hosts.filter((x) => x !== client)]) if (h) origins.appendChild(html("option", { value: h.name }, h.name));
  origins.appendChild(html("option", { value: "docker-host" }, "the Docker host (published port)"));
  if (origin) origins.value = origin;
  const links = $("link-host");
  const link = links.value;
  links.innerHTML = "";
  for (const h of t.hosts) links.appendChild(html("option", { value: h.name }, h.name));
  if (link) links.value = link;
}

async function send(event) {
  event.preventDefault();
  const option = $("send-target").selectedOptions[0];
  const protocol = option ? option.dataset.protocol : "raw";
  const words = ["http", "resp"].includes(protocol) ? $("send-words").value.trim().split(/\s+/) : [$("send-words").value];
  $("send-reply").className = "reply";
  $("send-reply").textContent = "sending…";
  try {
    const hold = $("send-hold").checked;
    const r = await api(hold ? "/api/hold" : "/api/send", { target: $("send-target").value, words, origin: $("send-origin").value, data: $("send-data").value });
    $("send-reply").textContent = (r.error ? `failed: ${r.error}\n` : "") + (r.reply || "(no answer)");
    if (r.error) $("send-reply").className = "reply bad";
  } catch (e) {
    $("send-reply").className = "reply bad";
    $("send-reply").textContent = e.message;
  }
}

async function fault(kind, target) {
  $("fault-result").textContent = `${kind} ${target}…`;
  try {
    $("fault-result").textContent = await api("/api/fault", { action: kind, target });
  } catch (e) {
    $("fault-result").textContent = e.message;
  }
}

async function restore() {
  $("fault-result").textContent = "restoring…";
  try {
    const done = await api("/api/restore", {});
    $("fault-result").textContent = done.length ? `restored: ${done.join(", ")}` : "nothing needed mending";
  } catch (e) {
    $("fault-result").textContent = e.message;
  }
}

async function link(event, reset) {
  if (event) event.preventDefault();
  try {
    $("fault-result").textContent = await api("/api/link", { host: $("link-host").value, spec: reset ? "reset" : $("link-spec").value });
  } catch (e) {
    $("fault-result").textContent = e.message;
  }
}

// ---------- experiments ----------

async function loadExperiments() {
  experiments = await api("/api/experiments").catch(() => []);
  const select = $("experiment");
  select.innerHTML = "";
  for (const e of experiments) select.appendChild(html("option", { value: e.name }, e.name));
  showClaims();
}

function showClaims() {
  const e = experiments.find((x) => x.name === $("experiment").value);
  $("question").textContent = e ? e.question : "";
  const box = $("claims");
  box.innerHTML = "";
  if (!e) return;
  if (e.lacking.length) box.appendChild(html("p", {}, `this topology lacks: ${e.lacking.join(", ")}`));
  box.appendChild(html("p", {}, "Will each claim hold? Say so first, then watch:"));
  for (const c of e.claims) {
    const row = html("div", { class: "claim-row" });
    row.appendChild(html("div", {}, c.text));
    for (const [value, words] of [["true", "holds"], ["false", "fails"]]) {
      const label = html("label");
      const input = html("input", { type: "radio", name: `claim-${c.id}`, value });
      label.appendChild(input);
      label.appendChild(document.createTextNode(` ${words}`));
      row.appendChild(label);
    }
    box.appendChild(row);
  }
}

async function runExperiment() {
  const e = experiments.find((x) => x.name === $("experiment").value);
  if (!e) return;
  const predictions = {};
  for (const c of e.claims) {
    const picked = document.querySelector(`input[name="claim-${c.id}"]:checked`);
    if (picked) predictions[c.id] = picked.value === "true";
  }
  $("run-result").textContent = `running ${e.name}… (watch the topology)`;
  recordRun(e.name);
  try {
    const r = await api("/api/run", { name: e.name, predictions: Object.keys(predictions).length ? predictions : null, by: $("by").value });
    showChecks(r);
    lastResult = r;
    if (r.cells && r.cells.length) showMatrix(r.cells, r.checks);
    offerSteps(r);
  } catch (err) {
    $("run-result").textContent = err.message;
  }
}

function showChecks(r) {
  const box = $("run-result");
  box.innerHTML = "";
  const said = (r.predictions && r.predictions.by_claim) || {};
  box.appendChild(html("p", {}, `${r.experiment}: ${r.passed ? "every claim held" : "a claim did not hold"}` + (r.predictions ? `; your predictions: ${r.predictions.right} of ${r.predictions.total} right` : "")));
  const table = html("table", { class: "checks" });
  for (const c of r.checks) {
    const tr = html("tr");
    tr.appendChild(html("td", {}, c.held ? "held" : "NOT held"));
    tr.appendChild(html("td", {}, c.claim));
    tr.appendChild(html("td", {}, c.observed));
    tr.appendChild(html("td", {}, c.id in said ? (said[c.id] ? "you were right" : "you said otherwise") : ""));
    table.appendChild(tr);
  }
  box.appendChild(table);
}

// ---------- views: the matrix and the ladder ----------

function showMatrix(cells, checks) {
  const verdict = Object.fromEntries((checks || []).map((c) => [c.id, c.held]));
  const rows = [...new Set(cells.map((c) => c.row))];
  const cols = [...new Set(cells.map((c) => c.client))];
  const table = html("table", { class: "matrix" });
  const head = html("tr");
  head.appendChild(html("th", {}, "fault \\ client"));
  for (const col of cols) head.appendChild(html("th", {}, col));
  table.appendChild(head);
  for (const row of rows) {
    const tr = html("tr");
    tr.appendChild(html("th", {}, row));
    for (const col of cols) {
      const cell = cells.find((c) => c.row === row && c.client === col);
      const id = `${row}.${col}`;
      const td = html("td", { class: id in verdict ? (verdict[id] ? "held" : "failed") : "", "data-cell": id }, cell ? cell.during : "");
      if (cell) td.addEventListener("click", () => replayCell(cell));
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  $("matrix").innerHTML = "";
  $("matrix").appendChild(html("p", {}, "Click a cell to watch its timeline on the topology."));
  $("matrix").appendChild(table);
  showView("matrix");
}

function replayCell(cell) {
  // The cell's own time line, stepped and played: its fault, its recovery, its calls.
  const timeline = [
    { t: cell.fault_at, kind: "fault", text: `${cell.row} begins` },
    { t: cell.recovered_at, kind: "fault", text: `${cell.row} undone` },
    ...cell.events.map((e) => ({ t: e.t, kind: "socket", event: e })),
  ].sort((a, b) => a.t - b.t);
  openSteps(`cell ${cell.row} / ${cell.client}: ${cell.during}`, timeline, (lastResult && lastResult.names) || {}, true);
}

function showView(name) {
  for (const view of ["happenings", "matrix", "ladder"]) $(view).classList.toggle("hidden", view !== name);
  document.querySelectorAll("#views nav button").forEach((b) => b.classList.toggle("active", b.dataset.view === name));
}

// ---------- start ----------

async function start() {
  $("send-form").addEventListener("submit", send);
  $("release-button").addEventListener("click", async () => {
    $("send-reply").textContent = await api("/api/release", {}).catch((e) => e.message);
  });
  $("restore-button").addEventListener("click", restore);
  $("link-form").addEventListener("submit", (e) => link(e, false));
  $("link-reset").addEventListener("click", () => link(null, true));
  $("experiment").addEventListener("change", showClaims);
  $("run-button").addEventListener("click", runExperiment);
  setupSteps();
  $("capture-toggle").addEventListener("change", async (e) => {
    try {
      await api("/api/capture", { on: e.target.checked });
    } catch (err) {
      $("notice").textContent = err.message;
      e.target.checked = false;
    }
  });
  document.querySelectorAll("#views nav button").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
  let state;
  try {
    state = await api("/api/state");
  } catch (e) {
    document.body.innerHTML = `<p style="padding:2em">${e.message}</p>`;
    return;
  }
  live = state.live;
  fillResults(state.results);
  if (live) {
    draw(state.topology);
    await loadExperiments();
  } else {
    $("send-button").disabled = true;
    $("run-button").disabled = true;
    $("notice").textContent = "no lab is running: pick a recorded run to replay";
  }
  connect();
}

start();
