// Agent console, left pane: the filtered queue (GET /api/handoffs), refreshed on every live event.

import {
  $, api, duration, el, option, reasonLabel, showAlert, slaBreached, state, stateLabel, teamName, urgencyBadge,
} from "./agent.core.js";

const list = $("queue");
const count = $("queue-count");
const empty = $("queue-empty");
let onSelect = () => {};
let loadedAt = 0;
let ticket = 0;

export function setupQueue(select) {
  onSelect = select;
  const team = $("filter-team");
  team.replaceChildren(option("", "All teams"));
  for (const t of state.info.teams) team.append(option(t.key, t.name));
  for (const id of ["filter-team", "filter-state", "filter-urgency", "filter-mine"]) {
    $(id).addEventListener("change", () => refreshQueue());
  }
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  setInterval(tickWaiting, 15000);
}

function query() {
  const params = new URLSearchParams();
  const chosen = $("filter-state").value;
  for (const s of chosen === "active" ? ["open", "claimed"] : [chosen]) params.append("state", s);
  if ($("filter-team").value) params.set("team", $("filter-team").value);
  if ($("filter-urgency").value) params.set("urgency", $("filter-urgency").value);
  if ($("filter-mine").checked) params.set("mine", "true");
  return params.toString();
}

export async function refreshQueue() {
  const mine = ++ticket;
  let items;
  try {
    items = await api("GET", "/api/handoffs?" + query());
  } catch (e) {
    if (mine === ticket) showAlert($("desk-error"), "The queue could not be loaded: " + e.message);
    return;
  }
  if (mine !== ticket) return; // a newer refresh is on its way
  showAlert($("desk-error"), "");
  loadedAt = Date.now();
  list.replaceChildren(...items.map(item));
  empty.hidden = items.length > 0;
  const breached = items.filter(slaBreached).length;
  count.textContent = `${items.length} handoff${items.length === 1 ? "" : "s"}` + (breached ? ` · ${breached} past SLA` : "");
}

export function markSelected() {
  for (const node of list.children) {
    const selected = Number(node.dataset.handoffId) === state.selectedId;
    node.classList.toggle("qi--selected", selected);
    node.querySelector("button").setAttribute("aria-current", selected ? "true" : "false");
  }
}

function running(h) {
  return h.state !== "resolved" && !h.first_response_at;
}

function item(h) {
  const li = el("li", "qi", null, { "data-testid": "queue-item", "data-handoff-id": h.id, "data-state": h.state });
  li.classList.toggle("qi--selected", h.id === state.selectedId);
  li.classList.toggle("qi--breached", slaBreached(h));
  li.classList.add(`qi--${h.urgency}`);
  const button = el("button", "qi__button", null, { type: "button", "aria-current": h.id === state.selectedId ? "true" : "false" });
  button.addEventListener("click", () => onSelect(h.id));

  const top = el("div", "qi__top");
  const wait = el("span", "qi__wait", null, { "data-testid": "queue-wait", title: running(h) ? "Waiting for a first reply" : "Time to first reply" });
  wait.dataset.base = String(h.waiting_seconds || 0);
  wait.dataset.running = running(h) ? "1" : "";
  wait.textContent = (running(h) ? "waiting " : "answered in ") + duration(h.waiting_seconds);
  top.append(urgencyBadge(h.urgency), el("span", "qi__id", `#${h.id}`),
    el("span", "qi__team", `${teamName(h.team)} · T${h.tier}`, { "data-testid": "queue-team" }), el("span", "qi__spacer"), wait);

  const bottom = el("div", "qi__bottom");
  bottom.append(el("span", `chip chip--${h.state}`, stateLabel(h), { "data-testid": "queue-state" }));
  if (slaBreached(h)) bottom.append(el("span", "chip chip--breached", "SLA breached", { "data-testid": "sla-breached" }));
  if (h.can_take === false) bottom.append(el("span", "chip chip--muted", "can't take", { title: h.why_not || "", "data-testid": "queue-cannot-take" }));

  button.append(top,
    el("div", "qi__reason", reasonLabel(h.reason), { "data-testid": "queue-reason" }),
    el("div", "qi__summary", h.summary || "(no summary)", { "data-testid": "queue-summary" }),
    bottom);
  li.append(button);
  return li;
}

function tickWaiting() {
  const extra = (Date.now() - loadedAt) / 1000;
  for (const node of list.querySelectorAll(".qi__wait")) {
    if (node.dataset.running) node.textContent = "waiting " + duration(Number(node.dataset.base) + extra);
  }
}
