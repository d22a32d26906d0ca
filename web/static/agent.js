// Agent console at /agent: log in, then the live queue (left) and the selected handoff (right).
// The queue and the open handoff follow GET /api/desk/stream (fetch + SSE, see chat.sse.js).

import { $, api, isSupervisor, showAlert, state } from "./agent.core.js";
import { staffPage } from "./staff.page.js";
import { forgetHandoff, insertText, onHandoffShown, reloadCanned, resetActions, retryDelivery, setupActions } from "./agent.actions.js";
import { setupCanned } from "./agent.canned.js";
import { renderDetail, setupDetail, showEmpty } from "./agent.detail.js";
import { markSelected, refreshQueue, setupQueue } from "./agent.queue.js";

const LIVE_TEXT = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" };
let stream = null;
let detailTicket = 0;
let pending = null; // debounce timer for live events
let wired = false;

// --- the session (staff.page.js) --------------------------------------------------------------------

function resetDesk() {
  stopLive();
  state.info = null;
  state.selectedId = null;
  state.detail = null;
  resetActions();
  $("queue").replaceChildren();
  showEmpty();
  if ($("canned-dialog").open) $("canned-dialog").close();
  history.replaceState(null, "", window.location.pathname);
}

async function startDesk() {
  let info;
  try {
    info = await api("GET", "/api/desk");
  } catch (e) {
    showAlert($("desk-error"), e.message);
    return;
  }
  state.info = info;
  const me = info.me;
  $("open-canned").hidden = !isSupervisor();
  $("open-kpis").hidden = !isSupervisor();
  $("open-trainer").hidden = !me.roles.some((r) => r === "trainer" || r === "admin");
  if (!wired) {
    wired = true;
    setupQueue(select);
    setupDetail({ retry: retryDelivery, insertText, refresh: refreshAll });
    setupActions(refreshAll);
    setupCanned(reloadCanned);
  }
  await refreshQueue();
  const fromHash = Number((window.location.hash.match(/^#handoff-(\d+)$/) || [])[1]);
  if (fromHash) await select(fromHash);
  startLive();
}

// --- selection and refresh ---------------------------------------------------------------------------

async function select(id) {
  if (state.selectedId !== id) forgetHandoff(state.selectedId);
  state.selectedId = id;
  state.detail = null;
  history.replaceState(null, "", `#handoff-${id}`);
  markSelected();
  await refreshDetail(true);
}

async function refreshDetail(fresh = false) {
  const id = state.selectedId;
  if (id === null) return;
  const ticket = ++detailTicket;
  try {
    const detail = await api("GET", `/api/handoffs/${id}`);
    if (ticket !== detailTicket || id !== state.selectedId) return;
    const isFresh = fresh || !state.detail || state.detail.handoff.id !== id;
    state.detail = detail;
    renderDetail(detail, { fresh: isFresh });
    onHandoffShown(detail, isFresh);
  } catch (e) {
    if (ticket !== detailTicket) return;
    if (e.status === 404 || e.status === 403) {
      state.selectedId = null;
      state.detail = null;
      showEmpty();
      markSelected();
    }
    showAlert($("desk-error"), `Handoff #${id} could not be loaded: ${e.message}`);
  }
}

async function refreshAll() {
  await Promise.all([refreshDetail(), refreshQueue()]);
}

// --- live updates ------------------------------------------------------------------------------------

function setLive(name) {
  const badge = $("live");
  badge.dataset.state = name;
  badge.textContent = LIVE_TEXT[name];
}

function startLive() {
  stopLive();
  setLive("connecting");
  stream = window.FrontdeskSSE.liveStream("/api/desk/stream", {
    token: () => state.token,
    onEvent: (type, event) => schedule(event),
    onState(name, error) {
      if (name === "open") {
        setLive("live");
        refreshAll(); // whatever happened while (re)connecting
      } else if (name === "retrying") {
        setLive("reconnecting");
      } else if (name === "stopped") {
        setLive("offline");
        if (error && error.status === 401) page.end("Your session has ended. Please log in again.");
      }
    },
  });
}

function stopLive() {
  if (stream) { const s = stream; stream = null; s.stop(); }
  setLive("offline");
}

let touchesDetail = false;
function schedule(event) {
  const d = state.detail;
  if (d && (event.handoff_id === d.handoff.id || event.conversation_id === d.handoff.conversation_id)) touchesDetail = true;
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    const detailToo = touchesDetail;
    touchesDetail = false;
    refreshQueue();
    if (detailToo) refreshDetail();
  }, 150);
}

// --- start -------------------------------------------------------------------------------------------

const page = staffPage({
  view: "desk-view", roles: ["admin", "supervisor", "agent"], start: startDesk, reset: resetDesk,
  refused: "This account cannot use the agent desk (it needs the agent or supervisor role).",
});
