// Trainers' page, right pane: retraining (a background job, polled, with its steps), the candidate's evaluation
// against the active model, activation, rejection ("Keep current") and rollback (the versions list), and the
// regression cases.

import { $, api, busy, clock, el, percent, showAlert } from "./staff.core.js";

const POLL_MS = 500;
const DONE = ["succeeded", "failed"];
// How the evaluation of nlu/retrain.py is shown; fields it adds later appear with their own names.
const METRICS = {
  accuracy: { label: "Accuracy (held-out)", better: "higher", format: share },
  macro_f1: { label: "Macro-F1 (held-out)", better: "higher", format: share },
  false_oos: { label: "In scope judged out of scope", better: "lower", format: share },
  oos_recall: { label: "Out-of-scope recall", better: "higher", format: share },
  regression_failures: { label: "Regression cases failed", better: "lower" },
};
const HIDDEN = ["version", "basis"];
// How the active model's column was obtained (nlu/retrain.py BASES).
const BASIS = {
  served: "Both columns are the models as they serve: neither was trained on the held-out slice.",
  refit: "The active model learnt from all of nlu.yml, held-out slice included, so its column is its recipe "
    + "(nlu.yml, same method) fitted again without the slice: both columns learnt from the same kind of data.",
  served_unsure: "The active model is scored as it serves, but it was trained under another held-out rule: it may "
    + "have learnt some of these examples, which flatters it.",
};
const JOB_STEPS = ["encoding", "fitting", "evaluating"]; // the steps shown; "saving" counts as evaluating

let announce = () => {};
let versions = [];
let job = null; // the job being followed
let pollTimer = null;
let shown = null; // the candidate version whose evaluation is on screen
let lastStep = null; // the job's last step before it ended (a failed job says where it stopped)

export function setupModels(callbacks) {
  announce = callbacks.announce;
  $("retrain").addEventListener("click", (event) => busy(event.currentTarget, $("retrain-error"), startRetrain));
  $("activate-candidate").addEventListener("click", activateShown);
  $("keep-current").addEventListener("click", (event) => busy(event.currentTarget, $("activate-error"), keepCurrent));
}

export function resetModels() {
  clearTimeout(pollTimer);
  job = null;
  versions = [];
  lastStep = null;
  hideEvaluation();
  $("job").hidden = true;
  $("retrain").disabled = false;
  $("versions").replaceChildren();
  $("cases").replaceChildren();
}

// --- retraining --------------------------------------------------------------------------------------

async function startRetrain() {
  hideEvaluation();
  try {
    follow(await api("POST", "/api/trainer/retrain"));
  } catch (e) {
    if (e.status !== 409) throw e;
    await resumeJob(); // someone else's retrain is running: follow that one
    if (!job || DONE.includes(job.status)) throw e;
    announce("A retrain was already running; showing its progress.");
  }
}

// At login: follow a running retrain, or offer the result of the last one if nobody decided yet.
export async function resumeJob() {
  try {
    const [latest] = await api("GET", "/api/trainer/jobs");
    if (!latest) return;
    if (!DONE.includes(latest.status)) follow(latest);
    else if (latest.status === "succeeded") await offer(latest.candidate_version, true);
  } catch (e) {
    showAlert($("retrain-error"), `Retrain jobs could not be loaded: ${e.message}`);
  }
}

function follow(next) {
  clearTimeout(pollTimer);
  job = next;
  renderJob();
  if (!DONE.includes(job.status)) {
    pollTimer = setTimeout(poll, POLL_MS);
    return;
  }
  if (job.status === "failed") {
    showAlert($("retrain-error"), `The retrain failed: ${job.error || job.stage}. The active model keeps serving.`);
  } else {
    offer(job.candidate_version, false);
  }
}

async function poll() {
  const id = job && job.id;
  if (!id) return;
  try {
    const next = await api("GET", `/api/trainer/jobs/${id}`);
    if (job && job.id === id) follow(next);
  } catch (e) {
    if (e.status === 401) return;
    showAlert($("retrain-error"), `Lost track of the retrain (${e.message}); retrying…`);
    pollTimer = setTimeout(poll, POLL_MS * 4);
  }
}

function renderJob() {
  const running = !DONE.includes(job.status);
  $("job").hidden = false;
  $("job").dataset.status = job.status;
  $("job-progress").value = job.progress;
  $("job-percent").textContent = percent(job.progress);
  const stage = job.status === "queued" ? "waiting to start" : job.stage;
  $("job-stage").textContent = job.status === "succeeded" ? "Done: the candidate is ready." : `${capital(stage)}…`;
  if (job.status === "failed") $("job-stage").textContent = "Failed.";
  renderSteps();
  $("retrain").disabled = running;
  $("retrain").textContent = running ? "Retraining…" : "Retrain the model";
  if (running) showAlert($("retrain-error"), "");
}

// Encoding -> fitting folds -> evaluating: done, current (or failed) and pending steps.
function renderSteps() {
  const failed = job.status === "failed";
  if (!failed && job.step !== "done") lastStep = job.step === "saving" ? "evaluating" : job.step;
  const index = job.status === "succeeded" ? JOB_STEPS.length : JOB_STEPS.indexOf(lastStep);
  for (const item of $("job-steps").children) {
    const i = JOB_STEPS.indexOf(item.dataset.step);
    item.dataset.state = i < index ? "done" : i > index ? "pending" : failed ? "failed" : "current";
    if (i === index && !failed) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

// --- the evaluation ----------------------------------------------------------------------------------

// Shows a new candidate's comparison; `quiet` (at login) skips candidates already decided on.
async function offer(version, quiet) {
  await refreshVersions();
  const record = versions.find((v) => v.version === version);
  if (!record || (quiet && record.status !== "candidate")) return;
  shown = version;
  renderEvaluation(record);
}

function renderEvaluation(record) {
  const metrics = record.metrics || {};
  const candidate = metrics.candidate || {};
  const active = metrics.active || null;
  $("evaluation").hidden = false;
  $("evaluation").dataset.version = record.version;
  $("evaluation-title").textContent = `Candidate ${record.version}`;
  $("evaluation-caption").replaceChildren(...caption(record, metrics, active));

  const columns = [["Candidate", candidate]];
  if (active) columns.push([active.version === record.version ? "Active (same)" : "Active", active]);
  const head = [el("th", null, "", { scope: "col" })];
  for (const [name, values] of columns) {
    const th = el("th", null, name, { scope: "col" });
    if (values.version) th.append(el("span", "metrics__version", values.version));
    head.push(th);
  }
  $("evaluation-head").replaceChildren(...head);
  const keys = [...new Set([...Object.keys(METRICS), ...columns.flatMap(([, v]) => Object.keys(v))])]
    .filter((k) => !HIDDEN.includes(k) && columns.some(([, v]) => k in v));
  $("evaluation-body").replaceChildren(...keys.map((key) => metricRow(key, columns, metrics)));

  const failures = candidate.regression_failures || [];
  const box = $("evaluation-failures");
  box.hidden = failures.length === 0;
  const list = el("ul");
  list.append(...failures.map((f) => el("li", null, describeFailure(f), { "data-testid": "regression-failure" })));
  box.replaceChildren(el("h5", null, "Regression cases the candidate gets wrong"), list);

  const notice = record.status === "active" ? "This version is already serving."
    : failures.length ? `The candidate fails ${failures.length} regression case(s); activating it anyway overrides them.`
      : record.status === "retired" ? "This candidate was served before and then replaced."
        : record.status === "rejected" ? `This candidate was rejected ${clock(record.rejected_at)} by ${record.rejected_by}.`
          : "";
  showAlert($("evaluation-notice"), notice);
  showAlert($("activate-error"), "");
  const button = $("activate-candidate");
  button.hidden = record.status === "active";
  button.textContent = failures.length ? "Activate anyway" : "Activate";
  button.dataset.force = failures.length ? "true" : "false";
  $("keep-current").textContent = record.status === "candidate" ? "Keep current" : "Close";
}

// What the table compares and how it is fair (nlu/heldout.py, nlu/retrain.py).
function caption(record, metrics, active) {
  const held = metrics.heldout;
  const lines = [];
  if (held) {
    const oos = held.out_of_scope ? `, ${held.out_of_scope} out of scope` : "";
    lines.push(`Held-out slice: ${held.in_scope} in-scope examples${oos}, chosen by a hash of each text, so the `
      + "slice stays put as the data grows; candidates are trained without it (your corrections and regression "
      + "cases are always trained on).");
  } else {
    lines.push(`Held-out slice: ${metrics.heldout_size ?? "?"} examples, from before slices were chosen by text `
      + "hash: the active model may have learnt them, so this comparison favours it.");
  }
  if (active && active.basis) lines.push(BASIS[active.basis] || "");
  lines.push(`Regression cases: ${metrics.regression_cases ?? 0} (activation checks the cases that exist then) · `
    + `candidate trained on ${record.training_size} examples.`);
  const nodes = [];
  for (const line of lines.filter(Boolean)) nodes.push(...(nodes.length ? [el("br")] : []), line);
  return nodes;
}

function describeFailure(f) {
  if (typeof f === "string") return f; // recorded before failures carried the labels
  return `${f.text} (expected ${f.expected || "out of scope"}, got ${f.predicted || "out of scope"})`;
}

async function keepCurrent() {
  const version = shown;
  const record = versions.find((v) => v.version === version);
  if (record && record.status === "candidate") {
    await api("POST", `/api/trainer/versions/${encodeURIComponent(version)}/reject`);
    const active = versions.find((v) => v.status === "active");
    announce(`Kept ${active ? active.version : "the current model"}; the candidate ${version} is rejected.`);
    await refreshVersions();
  }
  hideEvaluation();
}

function metricRow(key, columns, metrics) {
  const spec = METRICS[key] || {};
  const row = el("tr", null, null, { "data-metric": key });
  row.append(el("th", null, spec.label || humanize(key), { scope: "row" }));
  const values = columns.map(([, v]) => v[key]);
  const numbers = values.map((v) => (Array.isArray(v) ? v.length : v));
  for (const [i, value] of values.entries()) {
    let text;
    if (key === "regression_failures" && Array.isArray(value)) text = `${value.length} of ${metrics.regression_cases ?? "?"}`;
    else if (value === undefined || value === null) text = "–";
    else if (spec.format && typeof value === "number") text = spec.format(value);
    else if (Array.isArray(value)) text = String(value.length);
    else text = isScalar(value) ? String(value) : JSON.stringify(value);
    const cell = el("td", null, text);
    if (spec.better && numbers.length > 1 && typeof numbers[i] === "number" && typeof numbers[1 - i] === "number") {
      const better = spec.better === "higher" ? numbers[i] > numbers[1 - i] : numbers[i] < numbers[1 - i];
      if (better) cell.className = "metrics__better";
    }
    row.append(cell);
  }
  return row;
}

function hideEvaluation() {
  shown = null;
  $("evaluation").hidden = true;
}

async function activateShown(event) {
  const version = shown;
  const force = event.currentTarget.dataset.force === "true";
  const ok = await busy(event.currentTarget, $("activate-error"), () => activate(version, force));
  if (ok) hideEvaluation();
}

async function activate(version, force) {
  const record = await api("POST", `/api/trainer/versions/${encodeURIComponent(version)}/activate`, { force });
  announce(`Version ${record.version} is now serving customers.`);
  await refreshVersions();
}

// --- versions ----------------------------------------------------------------------------------------

export async function refreshVersions() {
  try {
    versions = await api("GET", "/api/trainer/versions");
  } catch (e) {
    showAlert($("versions-error"), `Model versions could not be loaded: ${e.message}`);
    return;
  }
  const activeIndex = versions.findIndex((v) => v.status === "active");
  $("active-version").textContent = activeIndex >= 0 ? versions[activeIndex].version : "none";
  $("versions").replaceChildren(...versions.map((v, i) => renderVersion(v, activeIndex >= 0 && i > activeIndex)));
}

function renderVersion(version, older) {
  const item = el("li", `version version--${version.status}`, null, {
    "data-testid": "version", "data-version": version.version, "data-status": version.status });
  const head = el("div", "version__head");
  head.append(el("code", "version__name", version.version));
  head.append(el("span", `chip ${version.status === "active" ? "chip--resolved" : version.status === "candidate" ? "chip--open" : "chip--muted"}`,
    version.status === "active" ? "active" : version.status, { "data-testid": "version-status" }));
  item.append(head);
  const trained = version.training_size ? `${version.training_size} examples` : "nlu.yml at startup";
  const lines = [`${version.method} · ${trained} · ${clock(version.created_at)} by ${version.created_by}`];
  if (version.activated_at) lines.push(`activated ${clock(version.activated_at)} by ${version.activated_by}`);
  if (version.rejected_at) lines.push(`rejected ${clock(version.rejected_at)} by ${version.rejected_by}`);
  const held = version.metrics && version.metrics.candidate;
  if (held && typeof held.accuracy === "number") lines.push(`held-out accuracy ${share(held.accuracy)}`);
  for (const line of lines) item.append(el("p", "version__meta muted", line));
  if (version.pruned_at) {
    item.dataset.pruned = "true";
    item.append(el("p", "version__meta version__pruned", `Model file deleted ${clock(version.pruned_at)} to save `
      + "space: no longer available.", { "data-testid": "version-pruned" }));
  } else if (version.status !== "active") {
    const button = el("button", "btn btn--tiny", older ? "Roll back to this" : "Activate", {
      type: "button", "data-testid": older ? "rollback" : "activate-version" });
    button.addEventListener("click", () => activateFromList(button, version.version, false));
    item.append(button);
  }
  return item;
}

async function activateFromList(button, version, force) {
  const alert = $("versions-error");
  showAlert(alert, "");
  button.disabled = true;
  try {
    await activate(version, force);
    if (shown === version) hideEvaluation();
  } catch (e) {
    showAlert(alert, e.message);
    if (e.status === 409 && !force && /regression/.test(e.message)) {
      // The version fails regression cases: activating it is still the trainer's call.
      const again = el("button", "btn btn--tiny btn--danger", "Activate anyway", { type: "button", "data-testid": "force-activate" });
      again.addEventListener("click", () => activateFromList(again, version, true));
      alert.append(" ", again);
    }
  } finally {
    button.disabled = false;
  }
}

// --- regression cases --------------------------------------------------------------------------------

export async function refreshCases() {
  let cases;
  try {
    cases = await api("GET", "/api/trainer/regression-cases");
  } catch (e) {
    showAlert($("cases-error"), `Regression cases could not be loaded: ${e.message}`);
    return;
  }
  showAlert($("cases-error"), "");
  $("cases-count").textContent = cases.length ? `(${cases.length})` : "";
  $("cases").replaceChildren(...cases.map(renderCase));
  $("cases-empty").hidden = cases.length > 0;
}

function renderCase(c) {
  const item = el("li", "case", null, { "data-testid": "regression-case", "data-case-id": c.id });
  item.append(el("p", "case__text", c.text, { "data-testid": "case-text" }));
  const meta = el("p", "case__meta muted");
  meta.append(el("span", null, "must be "), el("strong", null, c.expected_intent || "out of scope", { "data-testid": "case-intent" }));
  meta.append(` · ${c.created_by}, ${clock(c.created_at)}`);
  const remove = el("button", "btn btn--tiny btn--danger", "Delete", { type: "button", "data-testid": "delete-case" });
  remove.addEventListener("click", () => busy(remove, $("cases-error"), async () => {
    await api("DELETE", `/api/trainer/regression-cases/${c.id}`);
    announce("Regression case deleted.");
    await refreshCases();
  }));
  item.append(meta, remove);
  return item;
}

// --- formatting --------------------------------------------------------------------------------------

function share(value) {
  return `${(value * 100).toFixed(1)}%`;
}

function isScalar(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function humanize(key) {
  return capital(String(key).replace(/_/g, " "));
}

function capital(text) {
  const s = String(text || "");
  return s.charAt(0).toUpperCase() + s.slice(1);
}
