// The article form of the editors' page: open, create, save (PUT), delete, with a live preview of the
// sections the bot can quote (cut by the server's own chunker: POST /api/articles/preview).

import { $, api, busy, el, option, safeUrl, showAlert } from "./staff.core.js";
import { announce, confirmAction, markdown, teamName, teams } from "./editor.core.js";

// What the page asks of a new id (the API also accepts "_", kept for imported files).
const ID_RULE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const ID_MESSAGE = "The id can only have lowercase letters, digits and single dashes between words, e.g. reset-your-password.";
const PREVIEW_DELAY_MS = 200;
const FIELDS = ["id", "title", "tags", "team", "locale", "body"];

let current = null; // the article as saved (null: a new article)
let baseline = ""; // the form's values when opened or saved, to tell unsaved changes
let idTouched = false;
let previewTimer = null;
let previewTicket = 0;
let hooks = { saved: () => {}, deleted: () => {}, opened: () => {} };

export function setupForm(handlers) {
  hooks = handlers;
  $("article-form").addEventListener("submit", (event) => { event.preventDefault(); save(); });
  $("article-form").addEventListener("input", changed);
  $("article-form").addEventListener("change", changed);
  $("article-form").addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") { event.preventDefault(); save(); }
  });
  $("f-id").addEventListener("input", () => { idTouched = true; checkId(); });
  $("f-title").addEventListener("input", suggestId);
  $("f-title").addEventListener("input", schedulePreview);
  $("f-body").addEventListener("input", schedulePreview);
  $("discard").addEventListener("click", () => fill(current));
  $("delete").addEventListener("click", remove);
  window.addEventListener("beforeunload", (event) => { if (isDirty()) event.preventDefault(); });
}

export function isDirty() { return !$("editor-view").hidden && snapshot() !== baseline; }
export function currentId() { return current ? current.id : null; }

// True when there are no unsaved changes, or the editor agrees to lose them.
export async function mayLeave() {
  if (!isDirty()) return true;
  return confirmAction({ title: "Discard your changes?", ok: "Discard changes", danger: true,
    text: "This article has changes that are not saved. They will be lost." });
}

export async function openArticle(id) {
  if (current && current.id === id && !isDirty()) return true;
  if (!(await mayLeave())) return false;
  let article;
  try {
    article = await api("GET", `/api/articles/${encodeURIComponent(id)}`);
  } catch (e) {
    showAlert($("form-error"), e.status === 404 ? `The article ${id} does not exist (any more).` : e.message);
    return false;
  }
  fill(article);
  hooks.opened(article.id);
  return true;
}

export async function newArticle() {
  if (!(await mayLeave())) return false;
  fill(null);
  hooks.opened(null);
  $("f-id").focus();
  return true;
}

// Puts an article (or a blank new one) into the form.
export function fill(article) {
  current = article;
  idTouched = Boolean(article);
  const values = article || { id: "", title: "", tags: [], team: "", locale: "en", body: "" };
  $("f-id").value = values.id;
  $("f-id").disabled = Boolean(article);
  $("f-title").value = values.title;
  $("f-tags").value = values.tags.join(", ");
  fillTeams(values.team || "");
  $("f-locale").value = values.locale || "en";
  $("f-body").value = values.body;
  $("form-heading").textContent = article ? `Edit: ${article.title}` : "New article";
  $("f-id-hint").hidden = Boolean(article);
  const help = $("view-in-help");
  help.hidden = !article;
  if (article) help.href = safeUrl(article.url);
  $("delete").hidden = !article;
  showAlert($("form-error"), "");
  $("f-id").removeAttribute("aria-invalid");
  baseline = snapshot();
  changed();
  preview();
}

// The team select: the configured teams, plus the article's own team if the config no longer has it.
export function fillTeams(selected = $("f-team").value) {
  const select = $("f-team");
  const options = [option("", "No team (general)", !selected),
    ...teams.list.map((t) => option(t.key, t.name, t.key === selected))];
  if (selected && !teams.list.some((t) => t.key === selected)) {
    options.push(option(selected, `${teamName(selected)} (not in the teams config)`, true));
  }
  select.replaceChildren(...options);
}

function snapshot() {
  return JSON.stringify(FIELDS.map((f) => $(`f-${f}`).value));
}

function changed() {
  const dirty = isDirty();
  $("dirty").hidden = !dirty;
  $("discard").disabled = !dirty;
}

function slug(text) {
  return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80).replace(/-+$/, "");
}

// While the editor has not typed an id for a new article, it follows the title.
function suggestId() {
  if (current || idTouched) return;
  $("f-id").value = slug($("f-title").value);
  checkId();
}

function checkId() {
  const value = $("f-id").value;
  const bad = Boolean(value) && !ID_RULE.test(value);
  if (bad) $("f-id").setAttribute("aria-invalid", "true"); else $("f-id").removeAttribute("aria-invalid");
  showAlert($("form-error"), bad ? ID_MESSAGE : "");
  return !bad;
}

function tags() {
  return $("f-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
}

async function save() {
  const id = current ? current.id : $("f-id").value.trim();
  if (!current) {
    if (!id) { showAlert($("form-error"), "Give the article an id first: it becomes part of its address."); $("f-id").focus(); return; }
    if (!checkId()) { $("f-id").focus(); return; }
  }
  const body = { title: $("f-title").value, body: $("f-body").value, tags: tags(),
    locale: $("f-locale").value.trim() || "en", team: $("f-team").value || null };
  const created = !current;
  let saved = null;
  await busy($("save"), $("form-error"), async () => {
    saved = await api("PUT", `/api/articles/${encodeURIComponent(id)}`, body,
      { headers: created ? { "If-None-Match": "*" } : {} });
  });
  if (!saved) return;
  fill(saved);
  announce(created ? `Created “${saved.title}”. The bot can use it from now on.`
    : `Saved “${saved.title}”. The bot uses the new text from now on.`);
  hooks.saved(saved.id);
}

async function remove() {
  if (!current) return;
  const article = current;
  const sure = await confirmAction({ title: `Delete “${article.title}”?`, ok: "Delete article", danger: true,
    text: `It disappears from the help center (${article.url}) and the bot stops citing it. This cannot be undone.` });
  if (!sure) return;
  const done = await busy($("delete"), $("form-error"), () => api("DELETE", `/api/articles/${encodeURIComponent(article.id)}`));
  if (!done) return;
  fill(null);
  announce(`Deleted “${article.title}”.`);
  hooks.deleted(article.id);
}

// --- the preview -------------------------------------------------------------------------------------

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, PREVIEW_DELAY_MS);
}

async function preview() {
  clearTimeout(previewTimer);
  const mine = ++previewTicket;
  let result;
  try {
    result = await api("POST", "/api/articles/preview", { title: $("f-title").value, body: $("f-body").value });
  } catch (e) {
    if (mine === previewTicket) showAlert($("preview-error"), `The preview is not available. ${e.message}`);
    return;
  }
  if (mine !== previewTicket) return; // the editor typed on meanwhile
  showAlert($("preview-error"), "");
  const sections = result.sections;
  $("preview").replaceChildren(...sections.map((s, i) => section(s, i, sections)));
  $("preview-empty").hidden = sections.length > 0;
  $("preview-count").textContent = sections.length === 1 ? "(1 section)" : `(${sections.length} sections)`;
}

function section(s, index, all) {
  const item = el("li", "section", null, { "data-testid": "preview-section" });
  const head = el("div", "section__head");
  head.append(el("span", "section__number", index + 1),
    el("h4", "section__heading", s.heading || "(untitled)", { "data-testid": "preview-heading" }));
  const part = all.slice(0, index).filter((o) => o.heading === s.heading).length;
  if (part) head.append(el("span", "chip chip--muted", `part ${part + 1}`, { title: "Long sections are quoted in parts" }));
  head.append(el("span", "section__words muted", `${s.text.split(/\s+/).filter(Boolean).length} words`));
  const body = el("div", "section__body", null, { "data-testid": "preview-body" });
  body.append(markdown(s.text));
  item.append(head, body);
  return item;
}
