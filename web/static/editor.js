// Knowledge editors' page at /editor: log in (editor or admin), then the articles with how the bot used them
// (left), the article form with its live section preview, and "Try a question" (right).
// Everything from the server goes into the page with textContent (article text is untrusted).

import { $, api, busy, onUnauthorized, saveToken, session, showAlert } from "./staff.core.js";
import { currentId, fill, fillTeams, isDirty, mayLeave, newArticle, openArticle, setupForm } from "./editor.form.js";
import { knownArticle, refreshList, resetList, selectArticle, setupList } from "./editor.list.js";
import { resetTry, setupTry } from "./editor.try.js";

const EDITOR_ROLES = ["editor", "admin"];
const REFUSED = "This page is for knowledge editors. Your account does not have the editor role, so it cannot "
  + "change help-center articles; ask an admin for the editor role.";
let wired = false;

// --- login / logout ----------------------------------------------------------------------------------

function showLogin(message) {
  $("editor-view").hidden = true;
  $("login-view").hidden = false;
  showAlert($("login-error"), message || "");
  $("login-password").value = "";
  $("login-username").focus();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  await busy($("login-submit"), $("login-error"), async () => {
    const login = await api("POST", "/api/auth/login", { username, password });
    saveToken(login.token);
    await start();
  });
});

$("logout").addEventListener("click", async () => {
  if (!(await mayLeave())) return;
  try { await api("POST", "/api/auth/logout"); } catch (e) { /* the session ends here either way */ }
  endSession();
});

onUnauthorized(() => endSession("Your session has ended. Please log in again."));

function endSession(message) {
  saveToken(null);
  resetList();
  resetTry();
  fill(null);
  showLogin(message);
}

async function start() {
  let me;
  try {
    me = await api("GET", "/api/auth/me");
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
    return;
  }
  if (!me.roles.some((r) => EDITOR_ROLES.includes(r))) {
    // The token stays (the same tab may use another staff page with it); the form can log in someone else.
    showLogin(REFUSED);
    return;
  }
  const role = me.roles.includes("editor") ? "editor" : "admin";
  $("me").textContent = `${me.display_name || me.username} · ${role}`;
  if (!wired) {
    wired = true;
    setupList({ onOpen: (id) => openArticle(id) });
    setupForm({
      opened: (id) => { selectArticle(id); remember(id); },
      saved: async (id) => { await refreshList(); selectArticle(id); remember(id); },
      deleted: async () => { remember(null); await refreshList(); },
    });
    setupTry({ isDirty, open: (id) => openArticle(id) });
    $("new-article").addEventListener("click", () => newArticle());
    window.addEventListener("hashchange", () => {
      const id = wantedId();
      if (id && id !== currentId()) openArticle(id);
    });
  }
  $("login-view").hidden = true;
  $("editor-view").hidden = false;
  showAlert($("page-error"), "");
  fill(null);
  await refreshList();
  fillTeams();
  const wanted = wantedId();
  if (wanted && knownArticle(wanted)) await openArticle(wanted);
}

// --- the article in the address (/editor#article-id), so a link or a reload opens it again -----------------

function wantedId() {
  return decodeURIComponent(window.location.hash.slice(1));
}

function remember(id) {
  const url = id ? `#${encodeURIComponent(id)}` : window.location.pathname + window.location.search;
  history.replaceState(null, "", url);
}

// --- start -------------------------------------------------------------------------------------------

if (session.token) start(); else showLogin();
