// Knowledge editors' page at /editor: log in (editor or admin), then the articles with how the bot used them
// (left), the article form with its live section preview, and "Try a question" (right).
// Everything from the server goes into the page with textContent (article text is untrusted).

import { $, showAlert } from "./staff.core.js";
import { staffPage } from "./staff.page.js";
import { currentId, fill, fillTeams, isDirty, mayLeave, newArticle, openArticle, setupForm } from "./editor.form.js";
import { knownArticle, refreshList, resetList, selectArticle, setupList } from "./editor.list.js";
import { resetTry, setupTry } from "./editor.try.js";

const REFUSED = "This page is for knowledge editors. Your account does not have the editor role, so it cannot "
  + "change help-center articles; ask an admin for the editor role.";
let wired = false;

// --- the session (staff.page.js) and the page -------------------------------------------------------

async function start() {
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

staffPage({
  view: "editor-view", roles: ["editor", "admin"], refused: REFUSED, start, mayLeave,
  reset: () => { resetList(); resetTry(); fill(null); },
});
