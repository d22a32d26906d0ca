// Trainers' page at /trainer: log in (trainer or admin), then the inbox of likely misclassified messages
// (left) and the models: retrain, evaluation, versions and regression cases (right).
// Everything from the server goes into the page with textContent (customer text is untrusted).

import { $, api, busy, onUnauthorized, saveToken, session, showAlert } from "./staff.core.js";
import { refreshInbox, resetInbox, setupInbox } from "./trainer.inbox.js";
import { refreshCases, refreshVersions, resetModels, resumeJob, setupModels } from "./trainer.models.js";

const TRAINER_ROLES = ["trainer", "admin"];
const DESK_ROLES = ["agent", "supervisor", "admin"];
const REFUSED = "This page is for trainers. Your account does not have the trainer role, so it cannot review "
  + "messages or retrain the model; ask an admin for the trainer role.";
let wired = false;
let statusTimer = null;

// --- login / logout ----------------------------------------------------------------------------------

function showLogin(message) {
  $("trainer-view").hidden = true;
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
  try { await api("POST", "/api/auth/logout"); } catch (e) { /* the session ends here either way */ }
  endSession();
});

onUnauthorized(() => endSession("Your session has ended. Please log in again."));

function endSession(message) {
  saveToken(null);
  resetInbox();
  resetModels();
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
  if (!me.roles.some((r) => TRAINER_ROLES.includes(r))) {
    // The trainer API refuses these accounts anyway; forget the token so the form can be used again.
    saveToken(null);
    showLogin(REFUSED);
    return;
  }
  const role = ["admin", "trainer"].find((r) => me.roles.includes(r));
  $("me").textContent = `${me.display_name || me.username} · ${role}`;
  $("open-agent").hidden = !me.roles.some((r) => DESK_ROLES.includes(r));
  if (!wired) {
    wired = true;
    const changed = () => Promise.all([refreshInbox(), refreshCases()]);
    setupInbox({ announce, changed });
    setupModels({ announce });
    $("export").addEventListener("click", download);
  }
  $("login-view").hidden = true;
  $("trainer-view").hidden = false;
  showAlert($("page-error"), "");
  await Promise.all([refreshInbox(), refreshVersions(), refreshCases(), resumeJob()]);
}

// --- page-wide bits ----------------------------------------------------------------------------------

// A short confirmation of what just happened (screen readers hear it: role=status).
function announce(message) {
  const node = $("status");
  node.textContent = message;
  node.hidden = false;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { node.hidden = true; }, 8000);
}

// The export needs the bearer token, so the link is fetched here and saved from a blob.
async function download(event) {
  event.preventDefault();
  const anchor = event.currentTarget;
  await busy(null, $("page-error"), async () => {
    const response = await api("GET", anchor.getAttribute("href"), undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = "nlu.yml";
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}

// --- start -------------------------------------------------------------------------------------------

if (session.token) start(); else showLogin();
