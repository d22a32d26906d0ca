// Trainers' page at /trainer: log in (trainer or admin), then the inbox of likely misclassified messages
// (left) and the models: retrain, evaluation, versions and regression cases (right).
// Everything from the server goes into the page with textContent (customer text is untrusted).

import { $, api, busy, showAlert } from "./staff.core.js";
import { staffPage } from "./staff.page.js";
import { refreshInbox, resetInbox, setupInbox } from "./trainer.inbox.js";
import { refreshCases, refreshVersions, resetModels, resumeJob, setupModels } from "./trainer.models.js";
import { refreshData, resetData, setupData } from "./trainer.data.js";

const DESK_ROLES = ["agent", "supervisor", "admin"];
const REFUSED = "This page is for trainers. Your account does not have the trainer role, so it cannot review "
  + "messages or retrain the model; ask an admin for the trainer role.";
let wired = false;
let statusTimer = null;

// --- the session (staff.page.js) and the page -------------------------------------------------------

async function start(me) {
  $("open-agent").hidden = !me.roles.some((r) => DESK_ROLES.includes(r));
  if (!wired) {
    wired = true;
    const changed = () => Promise.all([refreshInbox(), refreshCases(), refreshData()]);
    setupInbox({ announce, changed });
    setupModels({ announce });
    setupData({ announce, changed });
    $("export").addEventListener("click", download);
  }
  showAlert($("page-error"), "");
  await Promise.all([refreshInbox(), refreshVersions(), refreshCases(), refreshData(), resumeJob()]);
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

staffPage({
  view: "trainer-view", roles: ["admin", "trainer"], refused: REFUSED, start,
  reset: () => { resetInbox(); resetModels(); resetData(); },
});
