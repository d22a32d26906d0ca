// Agent console, what an agent can do with the selected handoff: claim, transfer, escalate, resolve,
// reopen, reply (with canned responses), notes, intent corrections and delivery retries.
// Every server refusal (e.g. 409 "this handoff was already claimed by ann") shows in the action alert.

import { $, api, busy, option, showAlert, state } from "./agent.core.js";

const alertBox = $("action-error");
const reply = $("reply-text");
const drafts = new Map(); // handoff id -> unsent reply text
let cannedTeam = null;
let refresh = async () => {};

export function setupActions(refreshAfterAction) {
  refresh = refreshAfterAction;
  const act = (id, path, body) => $(id).addEventListener("click", () => run($(id), () => api("POST", path(), body)));
  act("act-claim", () => `/api/handoffs/${state.selectedId}/claim`);
  act("act-resolve", () => `/api/handoffs/${state.selectedId}/resolve`);
  act("act-reopen", () => `/api/handoffs/${state.selectedId}/reopen`);
  act("act-escalate", () => `/api/handoffs/${state.selectedId}/escalate`, { reason: "" });

  $("act-transfer").addEventListener("click", () => toggleTransfer());
  $("transfer-cancel").addEventListener("click", () => toggleTransfer(false));
  $("transfer-team").addEventListener("change", () => fillTiers());
  $("transfer-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { team: $("transfer-team").value, tier: Number($("transfer-tier").value), reason: $("transfer-reason").value.trim() };
    const ok = await run(event.submitter, () => api("POST", `/api/handoffs/${state.selectedId}/transfer`, body));
    if (ok) { toggleTransfer(false); $("transfer-reason").value = ""; }
  });

  $("reply-form").addEventListener("submit", (event) => { event.preventDefault(); sendReply(); });
  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendReply(); }
  });
  reply.addEventListener("input", () => drafts.set(state.selectedId, reply.value));

  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("note-text").value.trim();
    if (!text) { showAlert(alertBox, "The note is empty."); return; }
    if (await run(event.submitter, () => api("POST", `/api/handoffs/${state.selectedId}/notes`, { text }))) $("note-text").value = "";
  });

  const intents = $("intent-select");
  intents.replaceChildren(...state.info.intents.map((i) => option(i, i)));
  $("intent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(event.submitter, () => api("PUT", `/api/handoffs/${state.selectedId}/intent`, { intent: intents.value }));
  });

  $("canned-select").addEventListener("change", insertCanned);
}

// Runs an action on the selected handoff, then redraws from the server's state.
async function run(button, action) {
  const ok = await busy(button, alertBox, action);
  await refresh();
  return ok;
}

// Called when another handoff is selected (fresh) or the same one is redrawn.
export function onHandoffShown(detail, fresh) {
  const h = detail.handoff;
  if (fresh) {
    showAlert(alertBox, "");
    toggleTransfer(false);
    reply.value = drafts.get(h.id) || "";
    $("note-text").value = "";
    $("intent-select").value = h.corrected_intent || h.intent || state.info.intents[0];
  }
  if (cannedTeam !== h.team) loadCanned(h.team);
}

export function forgetHandoff(previousId) {
  if (previousId !== null) drafts.set(previousId, reply.value);
}

export function resetActions() {
  drafts.clear();
  cannedTeam = null;
  reply.value = "";
}

async function sendReply() {
  const text = reply.value.trim();
  if (!text) { showAlert(alertBox, "Write a reply first."); reply.focus(); return; }
  const id = state.selectedId;
  const ok = await run($("send-reply"), () => api("POST", `/api/handoffs/${id}/reply`, { text }));
  if (ok) {
    drafts.delete(id);
    if (state.selectedId === id) reply.value = "";
  }
  reply.focus();
}

export function insertText(text) {
  const start = reply.selectionStart ?? reply.value.length;
  const end = reply.selectionEnd ?? reply.value.length;
  const before = reply.value.slice(0, start);
  const glue = before && !/\s$/.test(before) ? " " : "";
  reply.value = before + glue + text + reply.value.slice(end);
  const caret = (before + glue + text).length;
  reply.setSelectionRange(caret, caret);
  drafts.set(state.selectedId, reply.value);
  reply.focus();
}

export async function retryDelivery(messageId, button) {
  await run(button, () => api("POST", `/api/messages/${messageId}/retry-delivery`));
}

// --- canned responses --------------------------------------------------------------------------------

export async function loadCanned(team) {
  cannedTeam = team;
  const select = $("canned-select");
  try {
    const items = await api("GET", "/api/canned?team=" + encodeURIComponent(team));
    if (cannedTeam !== team) return;
    select.replaceChildren(option("", items.length ? "Insert a canned response…" : "No canned responses"),
      ...items.map((c) => option(String(c.id), c.team ? c.title : `${c.title} (all teams)`)));
  } catch (e) {
    select.replaceChildren(option("", "Canned responses unavailable"));
  }
}

export function reloadCanned() {
  if (cannedTeam) loadCanned(cannedTeam);
}

async function insertCanned() {
  const select = $("canned-select");
  const id = select.value;
  if (!id) return;
  await busy(select, alertBox, async () => {
    const rendered = await api("GET", `/api/handoffs/${state.selectedId}/canned/${id}`);
    insertText(rendered.text);
  });
  select.value = "";
}

// --- transfer ----------------------------------------------------------------------------------------

function toggleTransfer(open) {
  const form = $("transfer-form");
  const show = open === undefined ? form.hidden : open;
  form.hidden = !show;
  $("act-transfer").setAttribute("aria-expanded", String(show));
  if (!show || !state.detail) return;
  const h = state.detail.handoff;
  const teams = $("transfer-team");
  teams.replaceChildren(...state.info.teams.map((t) => option(t.key, t.on_duty ? t.name : `${t.name} (off duty)`, t.key === h.team)));
  fillTiers(h.tier);
  $("transfer-reason").focus();
}

function fillTiers(current) {
  const team = state.info.teams.find((t) => t.key === $("transfer-team").value);
  const tiers = $("transfer-tier");
  const keep = current || Number(tiers.value) || 1;
  tiers.replaceChildren();
  for (let tier = 1; tier <= (team ? team.tiers : 1); tier += 1) tiers.append(option(String(tier), `Tier ${tier}`, tier === keep));
}
