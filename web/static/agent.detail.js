// Agent console, right pane: draws one handoff (GET /api/handoffs/{id}) with its whole context.
// Only the data areas are redrawn on refresh; the reply box, note box and forms keep what the agent typed.

import {
  $, api, articleUrl, busy, clock, duration, el, link, percent, reasonLabel, showAlert, slaBreached, state, stateLabel,
  teamName, urgencyBadge,
} from "./agent.core.js";

let onRetry = () => {};
let onInsert = () => {};
let onChanged = async () => {};

export function setupDetail({ retry, insertText, refresh }) {
  onRetry = retry;
  onInsert = insertText;
  onChanged = refresh;
  $("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = $("link-query").value.trim();
    await busy(event.submitter, $("link-error"), async () => {
      const found = await api("GET", `/api/customers?q=${encodeURIComponent(query)}`);
      renderLinkResults(found);
    });
  });
}

export function showEmpty() {
  $("detail-empty").hidden = false;
  $("detail-body").hidden = true;
}

export function renderDetail(detail, { fresh }) {
  const h = detail.handoff;
  const ctx = h.context || {};
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail").dataset.handoffId = String(h.id);
  $("detail").dataset.state = h.state;
  $("d-title").textContent = `#${h.id} · ${h.summary || "(no summary)"}`;
  renderMeta(h);
  renderButtons(h);
  renderFacts(h, ctx, detail.csat);
  renderReasons(ctx.urgency_reasons || []);
  if (fresh) clearLinkForm();
  renderCustomer(detail.customer || ctx.customer);
  renderOffered(ctx.articles_offered || []);
  renderSuggested(detail.suggested_articles || []);
  renderNotes(detail.notes || []);
  renderTranscript(detail.transcript || [], fresh);
}

function renderMeta(h) {
  const parts = [
    el("span", `chip chip--${h.state}`, stateLabel(h), { "data-testid": "detail-state" }),
    urgencyBadge(h.urgency),
    el("span", null, `${teamName(h.team)} · tier ${h.tier}`, { "data-testid": "detail-team" }),
    el("span", null, `via ${h.channel || "web"}`),
    el("span", null, h.first_response_at ? `first reply after ${duration(h.waiting_seconds)}` : `waiting ${duration(h.waiting_seconds)}`),
  ];
  if (slaBreached(h)) parts.push(el("span", "chip chip--breached", "SLA breached", { "data-testid": "detail-sla-breached" }));
  $("d-meta").replaceChildren(...parts);
  const whyNot = $("d-why-not");
  whyNot.textContent = h.can_take === false && h.why_not ? `You can't take this one: ${h.why_not}` : "";
  whyNot.hidden = !whyNot.textContent;
}

function renderButtons(h) {
  const resolved = h.state === "resolved";
  const mine = h.claimed_by === state.info.me.username;
  $("act-claim").hidden = resolved || mine;
  $("act-transfer").hidden = resolved;
  $("act-escalate").hidden = resolved;
  $("act-resolve").hidden = resolved;
  $("act-reopen").hidden = !resolved;
  $("send-reply").disabled = resolved;
  $("reply-hint").textContent = resolved ? "Resolved: reopen it to write to the customer." : "";
  if (resolved) $("transfer-form").hidden = true;
}

function fact(dl, term, ...value) {
  dl.append(el("dt", null, term), el("dd", null, null));
  dl.lastChild.append(...value.map((v) => (typeof v === "string" ? document.createTextNode(v) : v)));
}

function renderFacts(h, ctx, csat) {
  const dl = $("case-facts");
  dl.replaceChildren();
  fact(dl, "Reason", el("strong", null, reasonLabel(h.reason), { "data-testid": "detail-reason" }),
    h.reason_detail ? el("span", "fact__sub", h.reason_detail, { "data-testid": "detail-reason-detail" }) : "");
  fact(dl, "Urgency", urgencyBadge(h.urgency), ctx.urgency_score !== undefined ? ` score ${Number(ctx.urgency_score).toFixed(2)}` : "");
  const intent = el("span", null, h.intent || "none", { "data-testid": "detail-intent" });
  fact(dl, "Intent", intent, h.confidence !== null && h.confidence !== undefined ? ` (${percent(h.confidence)})` : "");
  if (h.corrected_intent) fact(dl, "Corrected to", el("strong", null, h.corrected_intent, { "data-testid": "detail-corrected-intent" }));
  const history = (ctx.intents || []).filter((t) => t.intent || t.out_of_scope);
  if (history.length > 1) {
    fact(dl, "Over the turns", history.map((t) => (t.out_of_scope ? "out of scope" : `${t.intent} ${percent(t.confidence)}`)).join(" → "));
  }
  if (h.sla) {
    const due = h.first_response_at ? `resolve by ${clock(h.sla.resolution_due)}` : `first reply by ${clock(h.sla.first_response_due)}`;
    fact(dl, "SLA", h.state === "resolved" ? "met or closed" : due);
  }
  fact(dl, "Created", clock(h.created_at));
  if (h.claimed_by) fact(dl, "Claimed by", h.claimed_by);
  if (h.required_skills && h.required_skills.length) fact(dl, "Skills", h.required_skills.join(", "));
  if (csat !== null && csat !== undefined) fact(dl, "CSAT", el("strong", null, `${csat}/5`, { "data-testid": "detail-csat" }));
}

function renderReasons(reasons) {
  const ul = $("urgency-reasons");
  ul.replaceChildren(...reasons.map((r) => el("li", null, r)));
  ul.hidden = reasons.length === 0;
}

function renderCustomer(customer) {
  const box = $("customer");
  if (!customer) { box.replaceChildren(el("p", "muted", "No customer profile.")); return; }
  const dl = el("dl", "facts");
  fact(dl, "Name", el("span", null, customer.display_name || "not given", { "data-testid": "customer-name" }));
  fact(dl, "Email", el("span", null, customer.email || "not given", { "data-testid": "customer-email" }));
  fact(dl, "Tier", customer.tier || "standard");
  const ids = customer.identities || [];
  fact(dl, "Identities", ids.length ? ids.map((i) => `${i.channel}: ${i.external_id}`).join(", ") : "web chat only");
  const earlier = customer.conversations || customer.earlier_conversations || [];
  const list = el("ul", "earlier", null, { "data-testid": "customer-earlier" });
  for (const c of earlier) {
    list.append(el("li", null, `${clock(c.started_at)} · ${c.channel} · ${c.status}${c.outcome ? " · " + c.outcome : ""}`));
  }
  box.replaceChildren(dl, el("h4", null, "Earlier conversations"),
    earlier.length ? list : el("p", "muted", "None: first contact.", { "data-testid": "customer-earlier" }));
}

// --- linking two profiles of one person (POST /api/customers/{id}/merge) ---------------------------

function clearLinkForm() {
  $("link-query").value = "";
  $("link-results").replaceChildren();
  showAlert($("link-error"), "");
}

function renderLinkResults(found) {
  const current = state.detail && state.detail.customer ? state.detail.customer.customer_id : null;
  const others = found.filter((c) => c.customer_id !== current);
  if (!others.length) {
    $("link-results").replaceChildren(el("li", "muted", "No other profile matches."));
    return;
  }
  $("link-results").replaceChildren(...others.map((c) => {
    const ids = c.identities.map((i) => `${i.channel}: ${i.external_id}`).join(", ") || "no channel ids";
    const label = `${c.display_name || "no name"} · ${c.email || "no email"} · ${ids} · ${c.conversations.length} conversation(s)`;
    const li = el("li", null, null, { "data-testid": "link-result" });
    const button = el("button", "btn btn--tiny", "Link", { type: "button", "data-testid": "link-merge" });
    button.addEventListener("click", () => busy(button, $("link-error"), async () => {
      await api("POST", `/api/customers/${current}/merge`, { other_customer_id: c.customer_id });
      clearLinkForm();
      await onChanged();
    }));
    li.append(el("span", null, label), button);
    return li;
  }));
}

function renderOffered(offered) {
  const ul = $("offered");
  if (!offered.length) { ul.replaceChildren(el("li", "muted", "The bot offered no articles.")); return; }
  ul.replaceChildren(...offered.map((a) => {
    const li = el("li", null, null, { "data-testid": "offered-article" });
    const reaction = a.reaction || "no reaction";
    li.append(link(articleUrl(a.article_id), a.title),
      el("span", "muted", ` ${a.kind === "answer" ? "answered" : "suggested"} · `),
      el("span", `chip chip--${reaction.replace(/\s+/g, "-")}`, reaction, { "data-testid": "offered-reaction" }));
    return li;
  }));
}

function renderSuggested(hits) {
  const ul = $("suggested");
  if (!hits.length) { ul.replaceChildren(el("li", "muted", "No suggestions.")); return; }
  ul.replaceChildren(...hits.map((hit) => {
    const li = el("li", null, null, { "data-testid": "suggested-article" });
    const insert = el("button", "btn btn--tiny", "Insert link", { type: "button", "data-testid": "insert-article" });
    insert.addEventListener("click", () => onInsert(`${hit.title}: ${new URL(hit.url, window.location.origin).href}`));
    li.append(link(hit.url, hit.title), insert);
    if (hit.heading && hit.heading !== hit.title) li.append(el("div", "muted", hit.heading));
    return li;
  }));
}

function renderNotes(notes) {
  const ol = $("notes");
  if (!notes.length) { ol.replaceChildren(el("li", "muted", "No notes yet.")); return; }
  ol.replaceChildren(...notes.map((n) => {
    const li = el("li", "note", null, { "data-testid": "note" });
    li.append(el("div", "note__head", `${n.author} · ${clock(n.created_at)}`), el("div", "note__text", n.text));
    return li;
  }));
}

function who(m) {
  if (m.sender === "customer") return "Customer";
  if (m.sender === "agent") return m.author || "Agent";
  return m.sender === "bot" ? "Bot" : "System";
}

function message(m) {
  const li = el("li", `tm tm--${m.sender}`, null, { "data-testid": "transcript-message", "data-sender": m.sender, "data-message-id": m.id });
  const head = el("div", "tm__head");
  head.append(el("span", "tm__who", who(m)));
  if (m.kind) head.append(el("span", "tm__kind", m.kind.replace(/_/g, " ")));
  head.append(el("time", "tm__time", clock(m.created_at), { datetime: m.created_at }));
  li.append(head, el("div", "tm__text", m.text, { "data-testid": "message-text" }));
  if (m.citations && m.citations.length) {
    const cites = el("div", "tm__cites");
    for (const c of m.citations) cites.append(link(c.url, c.title));
    li.append(cites);
  }
  if (m.feedback) li.append(el("div", "tm__feedback", `Customer marked this ${m.feedback}`));
  if (m.delivery_status === "failed") {
    const row = el("div", "tm__undelivered");
    const retry = el("button", "btn btn--tiny", "Retry", { type: "button", "data-testid": "retry-delivery" });
    retry.addEventListener("click", () => onRetry(m.id, retry));
    row.append(el("span", null, `undelivered: ${m.delivery_error || "unknown error"}`, { "data-testid": "undelivered" }), retry);
    li.append(row);
  } else if (m.delivery_status === "pending") {
    li.append(el("div", "tm__pending muted", "sending…"));
  }
  return li;
}

function renderTranscript(messages, fresh) {
  const box = $("transcript");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const before = box.childElementCount;
  box.replaceChildren(...messages.map(message));
  if (fresh || atBottom || messages.length > before) box.scrollTop = box.scrollHeight;
}
