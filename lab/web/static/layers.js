// socklab's web view: one frame, layer by layer, as nested boxes beside its bytes in hex.
// Ethernet holds IPv4, which holds TCP, UDP or ICMP (which may hold VXLAN and a whole inner
// frame), which holds the payload. Each field is a button: focusing, hovering or pressing
// it marks its bytes in the hex (outlined and underlined, and said in words below), and
// its layer's bytes. The decision line says what the receiver did with the frame.
// Everything is text set with textContent; app.js's helpers ($, html) are used at call time.
"use strict";

const layersView = { detail: null, chosen: null }; // the frame shown; "layerIndex|field"

function spanText(start, end) {
  // Inclusive, as `socklab packets --frame N` prints a layer's bytes ("14-33", "none").
  return end > start ? `${start}-${end - 1}` : "none";
}

function fieldText(name, value) {
  if (typeof value !== "number") return `${name}: ${value}`;
  const hex = ["type", "checksum", "flags"].includes(name) ? ` (0x${value.toString(16).padStart(4, "0")})` : "";
  return `${name}: ${value}${hex}`;
}

function payloadPreview(hex) {
  let shown = "";
  for (let i = 0; i < Math.min(hex.length, 96); i += 2) {
    const code = parseInt(hex.slice(i, i + 2), 16);
    shown += code >= 32 && code < 127 ? String.fromCharCode(code) : "·";
  }
  return `as text: "${shown}"${hex.length > 96 ? "…" : ""}`;
}

function showLayers(detail, decision, frame) {
  layersView.detail = detail;
  const panel = $("inspect");
  panel.classList.remove("hidden");
  const focusedKey = panel.contains(document.activeElement) && document.activeElement.dataset.field
    ? `${document.activeElement.dataset.layerIndex}|${document.activeElement.dataset.field}`
    : null;
  if (!detail || detail.error) {
    $("inspect-title").textContent = detail && detail.error ? detail.error : "no frame";
    $("decision").textContent = "";
    $("layers").replaceChildren();
    $("hexdump").replaceChildren();
    $("field-info").textContent = "";
    return;
  }
  const who = frame ? `${frame.from} → ${frame.to}, ` : "";
  const where = frame && frame.capture ? ` captured at ${frame.capture}` : "";
  $("inspect-title").textContent = `frame ${detail.number}: ${who}${detail.summary} (${detail.length} bytes)${where}`;
  $("inspect").dataset.frame = detail.number;
  $("decision").textContent = `Decision: ${decision || "nothing recorded says what the receiver decided here"}`;
  $("decision").dataset.known = decision ? "yes" : "no";
  drawLayers(detail);
  drawHex(detail);
  const first = $("layers").querySelector(".field");
  const keep = focusedKey || layersView.chosen;
  const again = keep && $("layers").querySelector(`.field[data-key="${CSS.escape(keep)}"]`);
  const target = again || first;
  if (target) {
    target.tabIndex = 0;
    choose(target, false);
    if (focusedKey) target.focus();
  } else $("field-info").textContent = "";
}

function drawLayers(detail) {
  const root = $("layers");
  root.replaceChildren();
  let parent = root;
  detail.layers.forEach((layer, i) => {
    const range = spanText(layer.start, layer.end);
    const name = layer.name === "data" ? "payload" : layer.name;
    const box = html("div", { class: "layer", "data-layer": layer.name, "data-layer-index": i, "data-span": range, role: "group", "aria-label": `${name}, bytes ${range}` });
    box.appendChild(html("div", { class: "layer-head" }, `${name}  bytes ${range}`));
    for (const [field, value] of Object.entries(layer.fields)) {
      const span = (layer.spans || {})[field];
      const bytes = span ? spanText(span[0], span[1]) : "none";
      const said = !span || span[1] <= span[0] ? "no bytes" : span[1] - span[0] === 1 ? `byte ${span[0]}` : `bytes ${bytes}`;
      const row = html("button", {
        type: "button",
        class: "field",
        tabindex: "-1",
        "data-key": `${i}|${field}`,
        "data-layer": layer.name,
        "data-layer-index": i,
        "data-field": field,
        "data-value": String(value),
        "data-span": bytes,
      });
      row.appendChild(html("span", { class: "field-name" }, fieldText(field, value)));
      row.appendChild(html("span", { class: "field-bytes" }, said));
      row.addEventListener("focus", () => choose(row, true));
      row.addEventListener("mouseenter", () => choose(row, false));
      row.addEventListener("click", () => choose(row, true));
      box.appendChild(row);
    }
    if (layer.name === "data" && layer.end > layer.start && detail.hex)
      box.appendChild(html("div", { class: "preview" }, payloadPreview(detail.hex.slice(layer.start * 2, layer.end * 2))));
    parent.appendChild(box);
    parent = box;
  });
  for (const c of detail.checksums || [])
    root.appendChild(html("p", { class: "checksum", "data-checksum": c.layer }, `${c.layer} checksum 0x${c.carried.toString(16).padStart(4, "0")}: ${c.verdict}${c.verdict === "valid" ? "" : ` (recomputed 0x${c.computed.toString(16).padStart(4, "0")})`}`));
}

function drawHex(detail) {
  const root = $("hexdump");
  root.replaceChildren();
  const hex = detail.hex || "";
  const starts = new Set(detail.layers.map((l) => l.start));
  for (let row = 0; row * 2 < hex.length; row += 16) {
    const line = html("div", { class: "hexrow" });
    line.appendChild(html("span", { class: "off" }, row.toString(16).padStart(4, "0")));
    line.appendChild(document.createTextNode("  "));
    for (let i = row; i < row + 16 && i * 2 < hex.length; i++) {
      // "|" where a layer begins, as `socklab packets --frame N` prints it
      if (i > row) line.appendChild(document.createTextNode(starts.has(i) ? "|" : " "));
      const byte = html("span", { class: starts.has(i) && i ? "byte layer-start" : "byte", "data-offset": i }, hex.slice(i * 2, i * 2 + 2));
      byte.addEventListener("mouseenter", () => {
        const inner = [...$("layers").querySelectorAll(".field")].filter((f) => {
          const s = spanOf(f);
          return s && s[0] <= i && i <= s[1];
        });
        if (inner.length) choose(inner[inner.length - 1], false);
      });
      line.appendChild(byte);
    }
    root.appendChild(line);
  }
}

function spanOf(row) {
  const m = /^(\d+)-(\d+)$/.exec(row.dataset.span || "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

// Mark a field: its bytes, its layer's bytes, its row (and it becomes the one Tab reaches).
function choose(row, keep) {
  if (keep) layersView.chosen = row.dataset.key;
  for (const r of $("layers").querySelectorAll(".field")) {
    r.classList.toggle("active", r === row);
    r.setAttribute("aria-pressed", r === row ? "true" : "false");
    r.tabIndex = r === row ? 0 : -1;
  }
  for (const b of $("layers").querySelectorAll(".layer")) b.classList.toggle("active-layer", b === row.parentElement);
  const layer = layersView.detail.layers[Number(row.dataset.layerIndex)];
  const span = spanOf(row);
  const bytes = [];
  for (const b of $("hexdump").querySelectorAll(".byte")) {
    const at = Number(b.dataset.offset);
    const inField = span !== null && span[0] <= at && at <= span[1];
    b.classList.toggle("sel", inField);
    b.classList.toggle("in-layer", at >= layer.start && at < layer.end);
    if (inField) bytes.push(b.textContent);
  }
  const where = span ? (span[0] === span[1] ? `byte ${span[0]}` : `bytes ${row.dataset.span}`) : "no bytes";
  $("field-info").textContent = `${layer.name === "data" ? "payload" : layer.name} ${row.dataset.field} = ${row.dataset.value}: ${where}${bytes.length ? ` (${bytes.slice(0, 24).join(" ")}${bytes.length > 24 ? " …" : ""})` : ""}, outlined in the hex; its layer's bytes are underlined with dots`;
}

// Arrows up and down go from field to field, through every layer.
function onLayersKey(ev) {
  if (!["ArrowUp", "ArrowDown"].includes(ev.key) || !ev.target.classList.contains("field")) return;
  const rows = [...$("layers").querySelectorAll(".field")];
  const next = rows[rows.indexOf(ev.target) + (ev.key === "ArrowDown" ? 1 : -1)];
  if (next) next.focus();
  ev.preventDefault();
}
