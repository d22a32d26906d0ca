// Agent console, supervisors only: add, edit and delete canned responses (POST/PUT/DELETE /api/canned).

import { $, api, busy, el, option, showAlert, state, teamName } from "./agent.core.js";

const dialog = $("canned-dialog");
const form = $("canned-form");
const errorBox = $("canned-error");
let editing = null; // the id of the template in the form, or null for a new one
let changed = () => {};

export function setupCanned(onChange) {
  changed = onChange;
  $("open-canned").addEventListener("click", openPanel);
  $("canned-close").addEventListener("click", () => dialog.close());
  $("canned-new").addEventListener("click", () => edit(null));
  form.addEventListener("submit", save);
}

export function cannedTeams() {
  const team = $("canned-team");
  team.replaceChildren(option("", "All teams"), ...state.info.teams.map((t) => option(t.key, t.name)));
}

async function openPanel() {
  cannedTeams();
  edit(null);
  if (!dialog.open) dialog.showModal();
  await loadList();
}

async function loadList() {
  const list = $("canned-list");
  try {
    const items = await api("GET", "/api/canned");
    list.replaceChildren(...(items.length ? items.map(row) : [el("li", "muted", "No templates yet.")]));
  } catch (e) {
    showAlert(errorBox, "The templates could not be loaded: " + e.message);
  }
}

function row(c) {
  const li = el("li", "canned-item", null, { "data-testid": "canned-item", "data-canned-id": c.id });
  const head = el("div", "canned-item__head");
  head.append(el("strong", null, c.title, { "data-testid": "canned-item-title" }),
    el("span", "chip chip--muted", c.team ? teamName(c.team) : "All teams"));
  const buttons = el("div", "canned-item__buttons");
  const editButton = el("button", "btn btn--tiny", "Edit", { type: "button", "data-testid": "canned-edit" });
  editButton.addEventListener("click", () => edit(c));
  const remove = el("button", "btn btn--tiny btn--danger", "Delete", { type: "button", "data-testid": "canned-delete" });
  remove.addEventListener("click", () => {
    if (remove.dataset.confirm !== "1") { // a second click confirms (no blocking browser dialogs)
      remove.dataset.confirm = "1";
      remove.textContent = "Really delete?";
      return;
    }
    busy(remove, errorBox, async () => {
      await api("DELETE", `/api/canned/${c.id}`);
      if (editing === c.id) edit(null);
      await loadList();
      changed();
    });
  });
  buttons.append(editButton, remove);
  li.append(head, el("p", "canned-item__body", c.body), el("div", "muted", `updated by ${c.updated_by}`), buttons);
  return li;
}

function edit(c) {
  editing = c ? c.id : null;
  showAlert(errorBox, "");
  $("canned-form-title").textContent = c ? `Edit “${c.title}”` : "New template";
  $("canned-title").value = c ? c.title : "";
  $("canned-team").value = c && c.team ? c.team : "";
  $("canned-body").value = c ? c.body : "";
  $("canned-title").focus();
}

async function save(event) {
  event.preventDefault();
  const body = {
    title: $("canned-title").value.trim(),
    body: $("canned-body").value.trim(),
    team: $("canned-team").value || null,
  };
  if (!body.title || !body.body) { showAlert(errorBox, "A template needs a title and a text."); return; }
  const ok = await busy(event.submitter, errorBox, () => (editing === null
    ? api("POST", "/api/canned", body)
    : api("PUT", `/api/canned/${editing}`, body)));
  if (ok) {
    edit(null);
    await loadList();
    changed();
  }
}
