// The article list of the editors' page: every article with how the bot used it (GET /api/articles/stats),
// filtered by text (title, id, tag) and team, sorted so articles customers found unhelpful stand out.

import { $, api, el, option, showAlert } from "./staff.core.js";
import { teamName, teams } from "./editor.core.js";

const NO_TEAM = "__none__";
let articles = [];
let selectedId = null;
let onOpen = () => {};
let ticket = 0; // only the newest response renders

export function setupList(handlers) {
  onOpen = handlers.onOpen;
  $("library-filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-text").addEventListener("input", render);
  $("filter-team").addEventListener("change", render);
  $("filter-sort").addEventListener("change", render);
  $("filter-days").addEventListener("change", () => refreshList());
}

export function resetList() {
  articles = [];
  selectedId = null;
  $("article-rows").replaceChildren();
}

// Reloads the usage figures (and the teams) from the server.
export async function refreshList() {
  const mine = ++ticket;
  try {
    const stats = await api("GET", `/api/articles/stats?days=${encodeURIComponent($("filter-days").value)}`);
    if (mine !== ticket) return;
    articles = stats.articles;
    teams.list = stats.teams;
    fillTeamFilter();
    showAlert($("library-error"), "");
    render();
  } catch (e) {
    if (mine === ticket) showAlert($("library-error"), `The articles could not be loaded. ${e.message}`);
  }
}

export function selectArticle(id) {
  selectedId = id;
  for (const row of $("article-rows").children) {
    row.classList.toggle("usage__row--selected", row.dataset.articleId === id);
  }
}

export function knownArticle(id) {
  return articles.find((a) => a.id === id) || null;
}

function fillTeamFilter() {
  const select = $("filter-team");
  const current = select.value;
  const keys = new Set(teams.list.map((t) => t.key));
  const extra = [...new Set(articles.map((a) => a.team).filter((t) => t && !keys.has(t)))].sort();
  select.replaceChildren(option("", "All teams", current === ""),
    ...teams.list.map((t) => option(t.key, t.name, current === t.key)),
    ...extra.map((t) => option(t, t, current === t)),
    option(NO_TEAM, "No team", current === NO_TEAM));
}

function matches(article, words, team) {
  if (team === NO_TEAM ? article.team : team && article.team !== team) return false;
  const haystack = [article.title, article.id, ...article.tags].join(" ").toLowerCase();
  return words.every((w) => haystack.includes(w));
}

const SORTS = {
  unhelpful: (a, b) => b.unhelpful - a.unhelpful || used(b) - used(a) || a.id.localeCompare(b.id),
  used: (a, b) => used(b) - used(a) || b.unhelpful - a.unhelpful || a.id.localeCompare(b.id),
  title: (a, b) => a.title.localeCompare(b.title, undefined, { sensitivity: "base" }) || a.id.localeCompare(b.id),
  updated: (a, b) => String(b.updated_at).localeCompare(String(a.updated_at)) || a.id.localeCompare(b.id),
};

function used(article) { return article.answered + article.suggested; }

function render() {
  const words = $("filter-text").value.toLowerCase().split(/\s+/).filter(Boolean);
  const team = $("filter-team").value;
  const shown = articles.filter((a) => matches(a, words, team)).sort(SORTS[$("filter-sort").value] || SORTS.unhelpful);
  $("article-rows").replaceChildren(...shown.map(row));
  $("article-count").textContent = shown.length === articles.length
    ? `${articles.length}` : `${shown.length} of ${articles.length}`;
  const empty = $("library-empty");
  empty.textContent = articles.length ? "No article matches the filter." : "No articles yet. Write the first one.";
  empty.hidden = shown.length > 0;
}

function count(value, className, label) {
  const cell = el("td", "num");
  cell.append(value ? el("span", className, value, { "aria-label": `${value} ${label}` }) : el("span", "muted", "0"));
  return cell;
}

function row(article) {
  const attention = article.unhelpful > 0 && article.unhelpful >= article.helpful;
  const tr = el("tr", "usage__row", null, { "data-testid": "article-row", "data-article-id": article.id });
  tr.classList.toggle("usage__row--attention", attention);
  tr.classList.toggle("usage__row--selected", article.id === selectedId);
  const main = el("td", "usage__article");
  const open = el("button", "usage__open", article.title, { type: "button", "data-testid": "article-open" });
  open.addEventListener("click", () => onOpen(article.id));
  const meta = el("div", "usage__meta");
  meta.append(el("code", "usage__id", article.id, { "data-testid": "article-id" }));
  if (article.team) meta.append(el("span", "chip", teamName(article.team), { "data-testid": "article-team" }));
  for (const tag of article.tags) meta.append(el("span", "usage__tag", tag));
  main.append(open, meta);
  tr.append(main,
    count(article.answered, "", "answers"),
    count(article.suggested, "", "suggestions"),
    count(article.helpful, "chip chip--helpful", "helpful"),
    count(article.unhelpful, "chip chip--unhelpful", "unhelpful"));
  tr.cells[1].dataset.testid = "article-answered";
  tr.cells[2].dataset.testid = "article-suggested";
  tr.cells[3].dataset.testid = "article-helpful";
  tr.cells[4].dataset.testid = "article-unhelpful";
  return tr;
}
