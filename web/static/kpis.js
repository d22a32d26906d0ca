// The operators' KPI page at /kpis: log in (the staff session is shared with the agent console), pick a window
// and filters, then headline tiles, daily charts (inline SVG) and tables from GET /api/kpis.
// Every piece of text goes into the page with textContent; nothing is ever parsed as HTML.

import { reasonLabel } from "./agent.core.js";
import { $, api, busy, el, option, percent, showAlert } from "./staff.core.js";
import { staffPage } from "./staff.page.js";
import { barChart, lineChart } from "./kpis.charts.js";

const CHANNELS = { web: "Web", slack: "Slack", telegram: "Telegram", api: "API" };
const URGENCIES = ["critical", "high", "normal", "low"];
let teams = [];
let loading = 0; // ticket: only the newest request renders

// --- the session (staff.page.js) -----------------------------------------------------------------------

async function start() {
  readFilters();
  await load();
}

// --- filters -------------------------------------------------------------------------------------------

function isoDay(d) { return d.toISOString().slice(0, 10); }

function readFilters() {
  const params = new URLSearchParams(window.location.search);
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86400000);
  $("f-to").value = params.get("to") || isoDay(today);
  $("f-from").value = params.get("from") || isoDay(monthAgo);
  $("f-channel").value = CHANNELS[params.get("channel")] ? params.get("channel") : "";
  $("f-team").dataset.wanted = params.get("team") || "";
}

function query() {
  const params = new URLSearchParams({ from: $("f-from").value, to: $("f-to").value });
  const team = $("f-team").value || $("f-team").dataset.wanted;
  if (team) params.set("team", team);
  if ($("f-channel").value) params.set("channel", $("f-channel").value);
  return params;
}

$("kpi-filters").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("f-team").dataset.wanted = "";
  await busy($("f-apply"), null, load);
});

$("f-csv").addEventListener("click", () => busy($("f-csv"), $("kpi-error"), downloadCsv));

async function downloadCsv() {
  const response = await api("GET", "/api/kpis.csv?" + query().toString(), undefined, { raw: true });
  const found = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  const a = el("a", null, null, { href: url, download: found ? found[1] : "frontdesk-kpis.csv" });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- loading -------------------------------------------------------------------------------------------

async function load() {
  const ticket = ++loading;
  const params = query();
  showAlert($("kpi-error"), "");
  $("kpi-body").setAttribute("aria-busy", "true");
  try {
    const kpis = await api("GET", "/api/kpis?" + params.toString());
    if (ticket !== loading) return;
    history.replaceState(null, "", `${window.location.pathname}?${params.toString()}`);
    render(kpis);
  } catch (e) {
    if (ticket === loading && e.status !== 401) showAlert($("kpi-error"), e.message);
  } finally {
    if (ticket === loading) $("kpi-body").setAttribute("aria-busy", "false");
  }
}

function render(k) {
  fillTeams(k.teams, k.window.team);
  const w = k.window;
  const last = new Date(new Date(w.to).getTime() - 1);
  $("window-note").textContent = `${w.days} day${w.days === 1 ? "" : "s"}: ${w.from.slice(0, 10)} to ${isoDay(last)} (UTC)`;
  renderTiles(k);
  renderCharts(k.daily);
  renderTables(k);
}

function fillTeams(list, selected) {
  teams = list;
  const select = $("f-team");
  select.replaceChildren(option("", "All teams"), ...list.map((t) => option(t.key, t.name, t.key === selected)));
  select.dataset.wanted = "";
}

// --- formatting ----------------------------------------------------------------------------------------

const DASH = "–";
const teamLabel = (key) => (key === null ? "All teams" : (teams.find((t) => t.key === key) || { name: key }).name);
const share = (part, whole) => (whole ? percent(part / whole) : DASH);
const orDash = (text) => (text === "" || text === null || text === undefined ? DASH : text);

function seconds(value) {
  if (value === null || value === undefined) return DASH;
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 10) return `${value.toFixed(1)} s`;
  if (value < 90) return `${Math.round(value)} s`;
  const minutes = value / 60;
  if (minutes < 90) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
}

function minutes(value) {
  if (value < 60) return `${value} min`;
  if (value >= 2880 && value % 1440 === 0) return `${value / 1440} d`;
  return value % 60 === 0 ? `${value / 60} h` : `${(value / 60).toFixed(1)} h`;
}

function attainment(met, breached) {
  return met + breached ? percent(met / (met + breached)) : DASH;
}

// --- tiles ---------------------------------------------------------------------------------------------

function tile(key, label, value, detail) {
  const card = el("article", "tile", null, { "data-testid": `tile-${key}` });
  card.append(el("h3", "tile__label", label), el("p", "tile__value", orDash(value), { "data-testid": "tile-value" }),
    el("p", "tile__detail", detail, { "data-testid": "tile-detail" }));
  return card;
}

function renderTiles(k) {
  const c = k.conversations;
  const totals = k.sla.lines.filter((l) => l.team === null);
  const sum = (field) => totals.reduce((n, l) => n + l[field], 0);
  const frMet = sum("first_response_met");
  const frLate = sum("first_response_breached");
  const csat = k.csat;
  $("tiles").replaceChildren(
    tile("conversations", "Conversations", String(c.total), `${c.deflected} bot only · ${c.handed_off} handed off`),
    tile("deflection", "Deflection rate", percent(c.deflection_rate), "fully handled by the bot"),
    tile("handoff-rate", "Handoff rate", percent(c.handoff_rate), `${k.handoffs.total} handoff${k.handoffs.total === 1 ? "" : "s"} created`),
    tile("bot-first-response", "Bot first response", seconds(k.first_response.bot.p50_seconds),
      `median · p90 ${seconds(k.first_response.bot.p90_seconds)}`),
    tile("agent-first-response", "Agent first response", seconds(k.first_response.agent.p50_seconds),
      `median of ${k.first_response.agent.count} · p90 ${seconds(k.first_response.agent.p90_seconds)}`),
    tile("resolution", "Resolution time", seconds(k.resolution.p50_seconds),
      `median of ${k.resolution.count} · p90 ${seconds(k.resolution.p90_seconds)}`),
    tile("csat", "CSAT", csat.average === null ? "" : `${csat.average.toFixed(2)} / 5`,
      `${csat.responses} rating${csat.responses === 1 ? "" : "s"} · ${orDash(percent(csat.response_rate))} answered`),
    tile("sla", "First response SLA", attainment(frMet, frLate), `${sum("breaches")} target${sum("breaches") === 1 ? "" : "s"} missed`),
    tile("unhelpful", "Unhelpful answers", String(k.answers.unhelpful),
      `${orDash(percent(k.answers.unhelpful_rate))} of ${k.answers.answered} answers`),
  );
}

// --- charts --------------------------------------------------------------------------------------------

function renderCharts(daily) {
  const day = (p) => p.day.slice(5);
  $("charts").replaceChildren(
    barChart("Conversations per day (darker: handed off)", "chart-conversations",
      daily.map((p) => ({ label: day(p), value: p.conversations, handed_off: p.handed_off,
        tip: `${p.day}: ${p.conversations} conversations, ${p.handed_off} handed off` })), { stack: "handed_off" }),
    lineChart("Deflection rate", "chart-deflection",
      daily.map((p) => ({ label: day(p), value: p.deflection_rate, tip: `${p.day}: ${orDash(percent(p.deflection_rate))} deflected` })),
      { min: 0, max: 1, format: (v) => percent(v) }),
    barChart("Handoffs per day (darker: SLA missed)", "chart-handoffs",
      daily.map((p) => ({ label: day(p), value: p.handoffs, sla_breaches: p.sla_breaches,
        tip: `${p.day}: ${p.handoffs} handoffs, ${p.sla_breaches} with a missed SLA target` })), { stack: "sla_breaches" }),
    lineChart("CSAT average", "chart-csat",
      daily.map((p) => ({ label: day(p), value: p.csat_average,
        tip: `${p.day}: ${p.csat_average === null ? "no ratings" : `${p.csat_average.toFixed(2)} from ${p.csat_responses} ratings`}` })),
      { min: 1, max: 5, format: (v) => String(v) }),
  );
}

// --- tables --------------------------------------------------------------------------------------------

// The first `labels` cells are text; the others are figures (right-aligned).
function row(cells, labels, attrs) {
  const tr = el("tr", null, null, attrs);
  cells.forEach((cell, i) => tr.appendChild(el("td", i < labels ? null : "num", String(cell))));
  return tr;
}

function fill(id, rows, emptyText) {
  const body = $(id);
  const columns = body.closest("table").querySelectorAll("thead th").length;
  if (rows.length) { body.replaceChildren(...rows); return; }
  const td = el("td", "table__empty", emptyText, { colspan: columns });
  const tr = el("tr");
  tr.appendChild(td);
  body.replaceChildren(tr);
}

function renderTables(k) {
  const targets = Object.fromEntries(k.sla.targets.map((t) => [t.urgency, t]));
  const byUrgency = new Map(k.sla.lines.filter((l) => l.team === null).map((l) => [l.urgency, l]));
  fill("sla-urgency", URGENCIES.map((u) => {
    const l = byUrgency.get(u) || { handoffs: 0, first_response_met: 0, first_response_breached: 0, resolution_met: 0, resolution_breached: 0, breaches: 0 };
    const t = targets[u];
    return row([u, t ? `${minutes(t.first_response_minutes)} · ${minutes(t.resolution_minutes)}` : DASH, l.handoffs,
      attainment(l.first_response_met, l.first_response_breached), attainment(l.resolution_met, l.resolution_breached), l.breaches],
    2, { "data-urgency": u });
  }), "");
  fill("sla-team", k.sla.lines.filter((l) => l.team !== null).map((l) => row([teamLabel(l.team), l.urgency, l.handoffs,
    `${l.first_response_met} / ${l.first_response_breached}`, `${l.resolution_met} / ${l.resolution_breached}`, l.breaches],
  2, { "data-team": l.team, "data-urgency": l.urgency })), "No handoffs in this window.");
  fill("reasons", k.handoffs.by_reason.map((r) => row([reasonLabel(r.key), r.count, share(r.count, k.handoffs.total)], 1)),
    "No handoffs in this window.");
  fill("csat", [5, 4, 3, 2, 1].map((score) => {
    const n = k.csat.distribution[String(score)] || 0;
    return row([score, n, share(n, k.csat.responses)], 1);
  }), "");
  fill("channels", k.conversations.by_channel.map((c) => row([CHANNELS[c.key] || c.key, c.count, share(c.count, k.conversations.total)], 1)),
    "No conversations in this window.");
  fill("intents", k.intents.slice(0, 12).map((i) => row([i.intent === null ? "out of scope" : i.intent, i.messages, i.conversations, i.unhelpful], 1)),
    "No classified messages in this window.");
}

// --- boot ----------------------------------------------------------------------------------------------

staffPage({
  view: "kpi-view", roles: ["admin", "supervisor"], start,
  refused: "This account cannot see the KPIs (it needs the supervisor or admin role).",
});
