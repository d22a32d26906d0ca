// Staff pages (the agent console at /agent, the trainers' page at /trainer), shared pieces: the staff
// session token, the JSON API client, DOM and formatting helpers.
// Every piece of text goes into the page with textContent; nothing is ever parsed as HTML.

const TOKEN_KEY = "frontdesk.staff.token";

// The one staff session of this tab (sessionStorage: both staff pages share it, it ends with the tab).
export const session = { token: sessionStorage.getItem(TOKEN_KEY) };

export function saveToken(token) {
  session.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
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

// One request; `raw: true` returns the Response itself (downloads) once it is known to be ok; `headers` adds
// request headers (e.g. If-None-Match).
export async function api(method, path, body, { raw = false, headers: extra = {} } = {}) {
  const headers = { ...extra };
  if (session.token) headers.Authorization = "Bearer " + session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined, cache: "no-store" });
  } catch (e) {
    throw new ApiError("The server could not be reached. Check the connection and try again.", 0);
  }
  if (raw && response.ok) return response;
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : `The server answered ${response.status}.`;
    const error = new ApiError(message, response.status);
    if (response.status === 401 && session.token) unauthorized(error);
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
