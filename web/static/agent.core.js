// Agent console, shared pieces: the desk state, the JSON API client, DOM and formatting helpers.
// Every piece of text goes into the page with textContent; nothing is ever parsed as HTML.

import { el, session } from "./staff.core.js";

// The session, API client and DOM helpers are shared with the trainers' page (staff.core.js).
export {
  $, ApiError, api, busy, clock, el, link, onUnauthorized, option, percent, safeUrl, saveToken, showAlert,
} from "./staff.core.js";

export const state = {
  get token() { return session.token; }, // set through saveToken()
  info: null, // GET /api/desk: {teams, intents, me}
  selectedId: null,
  detail: null, // GET /api/handoffs/{id} of the selected handoff
};

export function isSupervisor() {
  const roles = (state.info && state.info.me.roles) || [];
  return roles.includes("supervisor") || roles.includes("admin");
}

// --- formatting ------------------------------------------------------------------------------------

export function articleUrl(articleId) {
  return "/help/articles/" + encodeURIComponent(articleId);
}

export const REASONS = {
  customer_request: "Customer asked for a person",
  urgency: "Urgent",
  low_confidence: "Bot was not sure what was meant",
  out_of_scope: "Outside what the bot covers",
  no_answer: "Bot found no answer",
  unhelpful: "Bot answers marked unhelpful",
  pipeline_error: "Bot failure",
};

export function reasonLabel(reason) {
  return REASONS[reason] || reason.replace(/_/g, " ");
}

export function teamName(key) {
  const team = state.info && state.info.teams.find((t) => t.key === key);
  return team ? team.name : key;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function urgencyBadge(urgency) {
  return el("span", `badge badge--${urgency}`, urgency, { "data-testid": "urgency-badge" });
}

export function slaBreached(handoff) {
  return Boolean(handoff.sla && (handoff.sla.first_response_breached || handoff.sla.resolution_breached));
}

export function stateLabel(handoff) {
  if (handoff.state === "claimed") return `Claimed by ${handoff.claimed_by}`;
  return handoff.state === "resolved" ? "Resolved" : "Open";
}
