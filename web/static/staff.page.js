// The staff pages' session flow, shared by /agent, /trainer, /editor and /kpis: the login form, the role
// check, the "name · role" line, logout and the end of a session (401). The token lives in the tab
// (staff.core.js), so one login serves every staff page; an account without the page's role keeps its token
// (another page may accept it) and sees why it cannot use this one.

import { $, api, busy, onUnauthorized, saveToken, session, showAlert } from "./staff.core.js";

const ENDED = "Your session has ended. Please log in again.";

// Wires the page and starts it. Options:
//   view     id of the element shown once logged in
//   roles    roles that may use the page, in the order the "me" line prefers them
//   refused  what an account without those roles is told
//   start    async (me) => void, after a successful login (me: GET /api/auth/me)
//   reset    () => void, when the session ends (forget what the page shows)
//   mayLeave async () => boolean, asked before logging out (e.g. unsaved changes)
// Returns { end(message) } to end the session from the page.
export function staffPage({ view, roles, refused, start, reset = () => {}, mayLeave = async () => true }) {
  function showLogin(message) {
    $(view).hidden = true;
    $("login-view").hidden = false;
    showAlert($("login-error"), message || "");
    $("login-password").value = "";
    $("login-username").focus();
  }

  function end(message) {
    saveToken(null);
    reset();
    showLogin(message);
  }

  async function begin() {
    let me;
    try {
      me = await api("GET", "/api/auth/me");
    } catch (e) {
      if (e.status !== 401) showLogin(e.message);
      return;
    }
    const role = roles.find((r) => me.roles.includes(r));
    if (!role) {
      showLogin(refused);
      return;
    }
    $("me").textContent = `${me.display_name || me.username} · ${role}`;
    $("login-view").hidden = true;
    $(view).hidden = false;
    await start(me);
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    await busy($("login-submit"), $("login-error"), async () => {
      const login = await api("POST", "/api/auth/login", { username, password });
      saveToken(login.token);
      await begin();
    });
  });

  $("logout").addEventListener("click", async () => {
    if (!(await mayLeave())) return;
    try { await api("POST", "/api/auth/logout"); } catch (e) { /* the session ends here either way */ }
    end();
  });

  onUnauthorized(() => end(ENDED));

  if (session.token) begin(); else showLogin();
  return { end };
}
