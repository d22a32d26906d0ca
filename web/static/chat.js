// Customer chat: talks to the JSON API; every piece of text is inserted with textContent (never innerHTML).
// While a person owns the conversation, agent replies and status changes arrive over a live stream
// (fetch + SSE, see chat.sse.js); when streaming is impossible or keeps failing the page polls instead.
(function () {
  "use strict";

  const STORAGE_KEY = "frontdesk.conversation";
  const RATED_KEY = "frontdesk.rated"; // {"<conversation>:<message>": score}: CSAT already given
  const POLL_MS = 2500;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const errorBox = document.getElementById("error");
  const statusBox = document.getElementById("status");
  let session = null; // {id, token}
  let lastId = 0;
  let pollTimer = null;
  let live = null; // the open live stream, if any
  let currentStatus = "bot";
  const rendered = new Set();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // Help-center passages use **bold** for menu names: shown as <strong>, built node by node (no HTML parsing).
  function richText(text) {
    const fragment = document.createDocumentFragment();
    String(text).split(/\*\*(.+?)\*\*/g).forEach((part, i) => {
      if (part) fragment.append(i % 2 ? el("strong", null, part) : document.createTextNode(part));
    });
    return fragment;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (session) headers["Authorization"] = "Bearer " + session.token;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    } catch (e) {
      const err = new Error("The service could not be reached. Check your connection and try again.");
      err.status = 0; // no answer at all
      throw err;
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "The service did not answer (" + response.status + ").";
      const err = new Error(message);
      err.status = response.status;
      err.retryAfter = Number(response.headers.get("Retry-After")) || 0;
      throw err;
    }
    return data;
  }

  function pause(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // A restart or a database hiccup answers 5xx, or nothing at all: the same message is sent again (same
  // client_message_id, which the server never processes twice) until it is stored, for up to two minutes.
  const RETRY_FOR_MS = 120000;
  async function postUntilStored(path, body) {
    const deadline = Date.now() + RETRY_FOR_MS;
    let delay = 500;
    for (;;) {
      try {
        return await api("POST", path, body);
      } catch (e) {
        const wait = e.retryAfter ? Math.min(e.retryAfter * 1000, 10000) : delay;
        if ((e.status && e.status < 500) || Date.now() + wait > deadline) throw e;
        showError("Reconnecting… your message will be sent as soon as the service answers.");
        await pause(wait);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  function safeUrl(url) {
    // Only same-site paths or http(s) links become hrefs.
    try {
      const parsed = new URL(url, window.location.origin);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : "#";
    } catch (e) { return "#"; }
  }

  function citationCard(citation, withPassage) {
    const card = el("div", "citation");
    const link = el("a", "citation__title", citation.title);
    link.href = safeUrl(citation.url);
    link.target = "_blank";
    link.rel = "noopener";
    card.append(el("span", "citation__label", withPassage ? "Source: " : ""), link);
    if (citation.heading && citation.heading !== citation.title) card.append(el("span", "citation__heading", " · " + citation.heading));
    if (!withPassage) {
      const plain = citation.passage.replace(/\*\*/g, "");
      card.append(el("p", "citation__snippet", plain.length > 160 ? plain.slice(0, 157) + "…" : plain));
    }
    return card;
  }

  function feedbackButtons(message) {
    const box = el("div", "feedback");
    if (message.feedback) {
      box.append(el("span", "feedback__done", message.feedback === "helpful" ? "Thanks for the feedback!" : "Thanks, noted."));
      return box;
    }
    box.append(el("span", "feedback__label", "Did this help?"));
    for (const [label, helpful] of [["Yes", true], ["No", false]]) {
      const b = el("button", "feedback__button", label);
      b.type = "button";
      b.addEventListener("click", async () => {
        try {
          const result = await api("POST", `/api/conversations/${session.id}/messages/${message.id}/feedback`, { helpful });
          box.replaceWith(feedbackButtons(result.message));
          result.replies.forEach(render);
          setStatus(result.conversation_status);
        } catch (e) { showError(e.message); }
      });
      box.append(b);
    }
    return box;
  }

  // --- CSAT: the bot's "how would you rate the help" question gets five buttons -----------------

  function ratings() {
    try { return JSON.parse(localStorage.getItem(RATED_KEY) || "{}") || {}; } catch (e) { return {}; }
  }

  function remember(messageId, score) {
    const all = ratings();
    all[`${session.id}:${messageId}`] = score;
    localStorage.setItem(RATED_KEY, JSON.stringify(all));
  }

  function csatThanks(score) {
    return el("p", "csat__done", `Thanks for rating us ${score}/5`);
  }

  function csatButtons(message) {
    const box = el("div", "csat");
    box.dataset.testid = "csat";
    const given = session ? ratings()[`${session.id}:${message.id}`] : undefined;
    if (given) { box.append(csatThanks(given)); return box; }
    const group = el("div", "csat__buttons");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Rate the help from 1 (poor) to 5 (excellent)");
    const problem = el("p", "csat__error");
    problem.hidden = true;
    const buttons = [1, 2, 3, 4, 5].map((score) => {
      const b = el("button", "csat__button", String(score));
      b.type = "button";
      b.title = `${score} out of 5`;
      b.addEventListener("click", async () => {
        buttons.forEach((x) => { x.disabled = true; });
        problem.hidden = true;
        try {
          await api("POST", `/api/conversations/${session.id}/csat`, { score });
          remember(message.id, score);
          box.replaceChildren(csatThanks(score));
        } catch (e) {
          problem.textContent = e.status === 409 ? "Thanks, your rating was already recorded." : e.message;
          problem.hidden = false;
          if (e.status === 409) group.remove(); else buttons.forEach((x) => { x.disabled = false; });
        }
      });
      return b;
    });
    group.append(...buttons);
    box.append(el("span", "csat__label", "Poor"), group, el("span", "csat__label", "Excellent"), problem);
    return box;
  }

  // --- the transcript ------------------------------------------------------------------------------

  function place(item, id) {
    // Keep the transcript in id order even when streamed and posted messages cross; pending bubbles stay last.
    for (const node of list.children) {
      if (node.dataset.id ? Number(node.dataset.id) > id : node.classList.contains("msg--pending") || node.classList.contains("msg--typing")) {
        list.insertBefore(item, node);
        return;
      }
    }
    list.append(item);
  }

  function render(message) {
    if (rendered.has(message.id)) return;
    rendered.add(message.id);
    lastId = Math.max(lastId, message.id);
    const item = el("li", `msg msg--${message.sender}` + (message.kind ? ` msg--${message.kind}` : ""));
    item.dataset.id = String(message.id);
    item.dataset.kind = message.kind || "";
    item.dataset.sender = message.sender;
    if (message.sender === "agent") item.append(el("div", "msg__author", message.author || "Support agent"));
    const bubble = el("div", "msg__bubble", message.sender === "bot" ? null : message.text);
    if (message.sender === "bot") bubble.append(richText(message.text));
    item.append(bubble);
    if (message.kind === "answer" && message.citations.length) {
      bubble.append(citationCard(message.citations[0], true));
      item.append(feedbackButtons(message));
    } else if (message.kind === "suggest") {
      const options = el("div", "suggestions");
      for (const c of message.citations) options.append(citationCard(c, false));
      bubble.append(options);
    } else if (message.kind === "csat_request" && message.sender === "bot") {
      item.append(csatButtons(message));
    }
    place(item, message.id);
    item.scrollIntoView({ block: "end" });
  }

  // --- live updates: stream while a person owns the conversation, poll as the fallback -------------

  function setStatus(status) {
    const was = currentStatus;
    currentStatus = status;
    statusBox.textContent = status === "human" ? "You are talking with our support team." : status === "closed" ? "This conversation is closed." : "";
    if (status === "human") {
      startLive();
    } else {
      stopLive();
      stopPolling();
      if (was === "human") poll(); // pick up what came with the change (the rating question after a resolve)
    }
  }

  async function poll() {
    if (!session) return;
    try {
      const messages = await api("GET", `/api/conversations/${session.id}/messages?after=${lastId}`);
      messages.forEach(render);
    } catch (e) { /* transient: try again at the next tick */ }
  }

  function startPolling() { if (!pollTimer) pollTimer = setInterval(poll, POLL_MS); }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  function streamingSupported() {
    return Boolean(window.FrontdeskSSE && window.ReadableStream && window.TextDecoderStream && window.AbortController);
  }

  function startLive() {
    if (live || !session) return;
    if (!streamingSupported()) { startPolling(); return; }
    const conversationId = session.id;
    live = window.FrontdeskSSE.liveStream(`/api/conversations/${conversationId}/stream`, {
      token: session.token,
      onEvent(type, data) {
        if (!session || session.id !== conversationId) return;
        if (type === "message.created" && data && data.id) render(data);
        else if (type === "conversation.status" && data && data.status && data.status !== currentStatus) setStatus(data.status);
      },
      onState(state) {
        if (state === "open") { stopPolling(); poll(); } // catch up on anything sent before the stream opened
        else if (state === "retrying" || state === "stopped") { if (live && currentStatus === "human") startPolling(); }
      },
    });
  }

  function stopLive() {
    if (!live) return;
    const stream = live;
    live = null;
    stream.stop();
  }

  // --- the conversation ----------------------------------------------------------------------------

  async function ensureSession() {
    if (session) return session;
    const created = await api("POST", "/api/conversations", {});
    session = { id: created.conversation_id, token: created.customer_token };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    return session;
  }

  async function restore() {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (!saved) return;
    try {
      session = JSON.parse(saved);
      const conversation = await api("GET", `/api/conversations/${session.id}`);
      conversation.messages.forEach(render);
      setStatus(conversation.status);
    } catch (e) {
      if (e.status === 0 || e.status >= 500) {
        // Server or network trouble: keep the conversation (its token is the only key to it).
        showError("Your conversation could not be loaded right now. Reload the page to try again.");
        return;
      }
      // Unreadable, unknown or refused (4xx): start afresh.
      session = null;
      localStorage.removeItem(STORAGE_KEY);
    }
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function send(text) {
    showError("");
    sendButton.disabled = true;
    const pending = el("li", "msg msg--customer msg--pending");
    pending.append(el("div", "msg__bubble", text));
    list.append(pending);
    const typing = el("li", "msg msg--bot msg--typing", "…");
    list.append(typing);
    const clientId = newId();
    try {
      await ensureSession();
      const turn = await postUntilStored(`/api/conversations/${session.id}/messages`,
        { text, client_message_id: clientId });
      showError("");
      pending.remove();
      render(turn.message);
      turn.replies.forEach(render);
      setStatus(turn.conversation_status);
      input.value = "";
    } catch (e) {
      pending.remove();
      showError(e.message);
      input.value = text;
    } finally {
      typing.remove();
      sendButton.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) { showError("Please type a question first."); return; }
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("new-conversation").addEventListener("click", () => {
    localStorage.removeItem(STORAGE_KEY);
    stopLive(); stopPolling();
    session = null; lastId = 0; rendered.clear(); setStatus("bot");
    list.querySelectorAll(".msg:not(.msg--welcome)").forEach((n) => n.remove());
    input.focus();
  });

  restore();
})();
