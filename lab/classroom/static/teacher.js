// The teacher's live view: every student, every claim, every check property, every few seconds.
"use strict";

async function reissue(id) {
  const token = window.teacherCsrf;
  const response = await fetch(`/teacher/api/students/${encodeURIComponent(id)}/token`,
    { method: "POST", headers: { "X-CSRF-Token": token }, credentials: "same-origin" });
  const body = await response.json();
  document.getElementById("issued").textContent = response.ok
    ? `new link for ${id}: ${location.origin}/signin?token=${body.token}` : body.error;
}

async function refresh() {
  const response = await fetch("/teacher/api/overview", { credentials: "same-origin" });
  if (!response.ok) { document.getElementById("queue").textContent = "signed out"; return; }
  const view = await response.json();
  window.teacherCsrf = view.csrf;
  document.getElementById("queue").textContent =
    `${view.running.length} running of ${view.capacity} at once; ${view.queue} queued`;
  const students = document.querySelector("#students tbody");
  students.replaceChildren();
  for (const s of view.students) {
    const button = el("button", "new link");
    button.addEventListener("click", () => reissue(s.id));
    const cell = el("td"); cell.appendChild(button);
    students.appendChild(row([s.id, s.name, s.runs, s.waiting, s.total ? `${s.right} of ${s.total}` : "-",
      s.wrong.join(", "), cell]));
  }
  const claims = document.querySelector("#claims tbody");
  claims.replaceChildren();
  for (const c of view.claims) {
    claims.appendChild(row([c.experiment, c.claim, c.students, c.right,
      el("td", `${Math.round(100 * c.share)}%`, c.share < 0.5 ? "bad" : ""), c.held]));
  }
  const checks = document.querySelector("#checks tbody");
  checks.replaceChildren();
  for (const c of view.checks) {
    const by = (v) => Object.entries(c.verdicts).filter(([, x]) => x === v).map(([k]) => k).join(", ");
    checks.appendChild(row([c.student, c.role, c.file, by("held"), el("td", by("failed"), "bad"), by("not judged")]));
  }
  const skipped = document.getElementById("skipped");
  skipped.replaceChildren(...(view.skipped.length ? view.skipped.map((s) => el("li", `${s.path}: ${s.reason}`)) : [el("li", "none")]));
}

refresh();
setInterval(refresh, 3000);
