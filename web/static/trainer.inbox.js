// Trainers' page, left pane: the inbox (GET /api/trainer/inbox) as clusters of similar messages, with the
// actions of POST /api/trainer/actions on one message or a whole cluster.

import { $, api, busy, clock, el, option, percent, showAlert } from "./staff.core.js";

const ACTIONS = {
  relabel: { label: "Relabel", done: (n, intent) => `Relabelled ${n} as ${intent}`, needsIntent: true,
    title: "Teach the model that this means the chosen intent" },
  add_example: { label: "Add as example", done: (n, intent) => `Added ${n} as examples of ${intent}`, needsIntent: true,
    title: "Add as a training example of the chosen intent (e.g. the model's guess was right)" },
  mark_oos: { label: "Out of scope", done: (n) => `Marked ${n} out of scope`, needsIntent: false,
    title: "Teach the model that this is outside what the bot covers" },
  ignore: { label: "Ignore", done: (n) => `Ignored ${n}`, needsIntent: false,
    title: "Take it out of the inbox without teaching the model anything" },
};

let intents = [];
let announce = () => {};
let changed = async () => {};
let ticket = 0;

export function setupInbox(callbacks) {
  announce = callbacks.announce;
  changed = callbacks.changed;
  $("inbox-refresh").addEventListener("click", (event) => busy(event.currentTarget, $("inbox-error"), loadInbox));
}

export function resetInbox() {
  ticket += 1;
  $("clusters").replaceChildren();
  $("inbox-count").textContent = "";
}

export async function refreshInbox() {
  try {
    await loadInbox();
  } catch (e) {
    showAlert($("inbox-error"), `The inbox could not be loaded: ${e.message}`);
  }
}

async function loadInbox() {
  const mine = ++ticket;
  const inbox = await api("GET", "/api/trainer/inbox");
  if (mine !== ticket) return; // a newer load is on its way
  showAlert($("inbox-error"), "");
  intents = inbox.intents;
  const clusters = inbox.clusters;
  $("inbox-count").textContent = inbox.total
    ? `${plural(inbox.total, "message")} in ${plural(clusters.length, "cluster")}` : "";
  $("clusters").replaceChildren(...clusters.map(renderCluster));
  $("inbox-empty").hidden = clusters.length > 0;
}

// --- drawing -----------------------------------------------------------------------------------------

function renderCluster(cluster) {
  const item = el("li", "cluster", null, { "data-testid": "cluster", "data-cluster-key": cluster.key });
  const head = el("header", "cluster__head");
  // A cluster is named after its most central message (a single message speaks for itself below).
  if (cluster.size > 1) head.append(el("h3", "cluster__label", cluster.label, { "data-testid": "cluster-label" }));
  const meta = el("p", "cluster__meta");
  meta.append(el("span", "chip chip--open", plural(cluster.size, "message"), { "data-testid": "cluster-size" }));
  for (const [reason, count] of Object.entries(cluster.reasons)) {
    meta.append(el("span", `chip ${reasonClass(reason)}`, `${reason} · ${count}`, { "data-testid": "cluster-reason" }));
  }
  if (cluster.suggested_intent) {
    meta.append(el("span", "muted", `Most likely: ${cluster.suggested_intent}`, { "data-testid": "cluster-suggestion" }));
  }
  head.append(meta);
  item.append(head);
  const ids = cluster.messages.map((m) => m.message_id);
  if (ids.length > 1) {
    const guessed = cluster.messages.some((m) => m.intent || m.corrected_intent);
    item.append(actionBar(ids, guessed ? cluster.suggested_intent : null, `all ${ids.length}`, "cluster-actions"));
  }
  const list = el("ol", "cluster__messages");
  list.append(...cluster.messages.map(renderMessage));
  item.append(list);
  return item;
}

function renderMessage(message) {
  const item = el("li", "im", null, { "data-testid": "inbox-message", "data-message-id": message.message_id });
  item.append(el("p", "im__text", message.text, { "data-testid": "message-text" }));
  const meta = el("p", "im__meta");
  const guess = message.intent || (message.out_of_scope ? "out of scope" : "no intent");
  const guessLine = el("span", null, "Model's guess: ");
  guessLine.append(el("strong", null, guess, { "data-testid": "guess" }));
  if (!message.intent && message.top_intent) guessLine.append(` (closest: ${message.top_intent})`);
  meta.append(guessLine);
  meta.append(el("span", null, `confidence ${percent(message.confidence)}`, {
    "data-testid": "confidence", title: `margin to the second intent: ${percent(message.margin)}` }));
  for (const reason of message.reasons) meta.append(el("span", `chip ${reasonClass(reason)}`, reason, { "data-testid": "reason" }));
  if (message.corrected_intent) {
    meta.append(el("span", "im__corrected", `Agent corrected to ${message.corrected_intent}`, { "data-testid": "corrected" }));
  }
  meta.append(el("span", "muted", clock(message.created_at), { title: `model ${message.model_version}` }));
  item.append(meta);
  // Out of scope: nothing is preselected, so relabelling is always a deliberate choice.
  const preset = message.corrected_intent || message.intent;
  item.append(actionBar([message.message_id], preset, null, "message-actions"));
  return item;
}

// The same controls for one message or a whole cluster (`scope`: e.g. "all 3"; null for one message).
function actionBar(ids, preset, scope, testid) {
  const form = el("div", "im__actions", null, { "data-testid": testid });
  const select = el("select", null, null, { "data-testid": "intent-select", "aria-label": "Intent" });
  select.append(option("", "Choose an intent…"), ...intents.map((i) => option(i, i, i === preset)));
  const keepLabel = el("label", "im__keep");
  const keep = el("input", null, null, { type: "checkbox", "data-testid": "keep-regression" });
  keepLabel.append(keep, scope ? " Keep as regression cases" : " Keep as regression case");
  const error = el("p", "alert im__error", null, { role: "alert", "data-testid": "action-error" });
  error.hidden = true;
  form.append(select);
  for (const [action, spec] of Object.entries(ACTIONS)) {
    const label = scope ? `${spec.label} ${scope}` : spec.label;
    const button = el("button", `btn btn--small${action === "relabel" ? " btn--primary" : ""}`, label, {
      type: "button", "data-testid": action.replace("_", "-"), "data-action": action, title: spec.title });
    button.addEventListener("click", () => act(form, button, ids, action, select.value, keep.checked, error));
    form.append(button);
  }
  form.append(keepLabel, error);
  return form;
}

async function act(form, button, ids, action, intent, keep, error) {
  const spec = ACTIONS[action];
  if (spec.needsIntent && !intent) {
    showAlert(error, "Choose an intent first.");
    return;
  }
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  const ok = await busy(button, error, async () => {
    const body = { message_ids: ids, action, keep_as_regression: keep && action !== "ignore" };
    if (spec.needsIntent) body.intent = intent;
    const result = await api("POST", "/api/trainer/actions", body);
    const kept = body.keep_as_regression ? " (kept as regression cases)" : "";
    announce(`${spec.done(plural(result.applied, "message"), intent)}${kept}.`);
  });
  buttons.forEach((b) => { b.disabled = false; });
  if (ok) await changed();
}

// --- formatting --------------------------------------------------------------------------------------

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function reasonClass(reason) {
  if (reason.includes("corrected") || reason.includes("unhelpful")) return "chip--unhelpful";
  return reason.includes("out of scope") ? "chip--claimed" : "chip--muted";
}
