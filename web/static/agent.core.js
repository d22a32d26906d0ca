// Agent console, shared pieces: the session state, the JSON API client, DOM and formatting helpers.
// Every piece of text goes into the page with textContent; nothing is ever parsed as HTML.

const TOKEN_KEY = "frontdesk.staff.token";

export const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  info: null, // GET /api/desk: {teams, intents, me}
  selectedId: null,
  detail: null, // GET /api/handoffs/{id} of the selected handoff
};

export function saveToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
}

export function isSupervisor() {
  const roles = (state.info && state.info.me.roles) || [];
  return roles.includes("supervisor") || roles.includes("admin");
}

// --- the API ---------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};
export function onUnauthorized(handler) { unauthorized = handler; }

export async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined, cache: "no-store" });
  } catch (e) {
    throw new ApiError("The server could not be reached. Check the connection and try again.", 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : `The server answered ${response.status}.`;
    const error = new ApiError(message, response.status);
    if (response.status === 401 && state.token) unauthorized(error);
    throw error;
  }
  return data;
}

// --- DOM -------------------------------------------------------------------------------------------

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text, attrs) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null && text !== "") node.textContent = String(text);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  return node;
}

export function option(value, label, selected) {
  const o = el("option", null, label);
  o.value = value;
  if (selected) o.selected = true;
  return o;
}

export function showAlert(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

export function safeUrl(url) {
  // Only http(s) links (or same-site paths) become hrefs.
  try {
    const parsed = new URL(url, window.location.origin);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : "#";
  } catch (e) { return "#"; }
}

export function link(url, text, className) {
  const a = el("a", className, text);
  a.href = safeUrl(url);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

export function articleUrl(articleId) {
  return "/help/articles/" + encodeURIComponent(articleId);
}

// Runs an async action with its button disabled; shows a failure in `alertNode`. Returns true on success.
export async function busy(button, alertNode, action) {
  if (alertNode) showAlert(alertNode, "");
  if (button) button.disabled = true;
  try {
    await action();
    return true;
  } catch (e) {
    if (alertNode) showAlert(alertNode, e.message);
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

// --- formatting ------------------------------------------------------------------------------------

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

export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

export function percent(value) {
  return value === null || value === undefined ? "" : `${Math.round(value * 100)}%`;
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
