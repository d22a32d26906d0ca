// "Try a question" on the editors' page: the articles the knowledge base ranks for a customer question and
// what the bot's knowledge-base step would do with them (POST /api/articles/try), intent and urgency aside.

import { $, api, busy, el, showAlert } from "./staff.core.js";
import { markdown } from "./editor.core.js";

const VERDICTS = {
  answer: "Answer",
  suggest: "Suggest articles",
  none: "Nothing from the knowledge base",
};
let hooks = { isDirty: () => false, open: () => {} };

export function setupTry(handlers) {
  hooks = handlers;
  $("try-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("try-text").value.trim();
    if (!text) { showAlert($("try-error"), "Type a question a customer might ask."); return; }
    await busy($("try-submit"), $("try-error"), async () => {
      render(await api("POST", "/api/articles/try", { text }));
    });
  });
}

export function resetTry() {
  $("try-result").hidden = true;
  $("try-hits").replaceChildren();
  $("try-text").value = "";
}

function score(value) { return value.toFixed(3); }

function render(result) {
  const t = result.thresholds;
  const decision = $("try-decision");
  decision.textContent = VERDICTS[result.decision] || result.decision;
  decision.dataset.kind = result.decision;
  const chosen = result.hits.filter((h) => h.chosen);
  let detail;
  if (result.decision === "answer") {
    detail = `It would quote “${chosen[0].title}”, section “${chosen[0].heading}” (score ${score(chosen[0].score)}).`;
  } else if (result.decision === "suggest") {
    detail = `No article is clearly best, so it would list ${chosen.length === 1 ? "1 article" : `${chosen.length} articles`} `
      + "for the customer to choose from.";
  } else {
    detail = result.hits.length
      ? `No article scores ${score(t.suggest_threshold)} or more (best ${score(result.hits[0].score)}). The bot would `
        + "ask the customer to rephrase or hand the conversation to a person, depending on the intent."
      : "There are no articles to search.";
  }
  $("try-detail").textContent = detail;
  $("try-unsaved").hidden = !hooks.isDirty();
  $("try-hits").replaceChildren(...result.hits.map((h, i) => hit(h, i, result.decision, t)));
  $("try-thresholds").textContent = `The bot answers when the best article scores at least ${score(t.answer_threshold)} `
    + `and leads the next one by ${score(t.answer_margin)} (or is the only one that high); otherwise it suggests up to `
    + `${t.max_suggestions} articles scoring at least ${score(t.suggest_threshold)}.`;
  $("try-result").hidden = false;
}

function hit(h, index, decision, t) {
  const item = el("li", "hit", null, { "data-testid": "try-hit", "data-article-id": h.article_id });
  item.classList.toggle("hit--chosen", h.chosen);
  const head = el("div", "hit__head");
  const open = el("button", "hit__title", h.title, { type: "button", title: "Open in the editor", "data-testid": "try-hit-open" });
  open.addEventListener("click", () => hooks.open(h.article_id));
  head.append(el("span", "hit__rank", `${index + 1}.`), open);
  if (h.chosen) head.append(el("span", "chip chip--helpful", decision === "answer" ? "quoted" : "suggested",
    { "data-testid": "try-hit-chosen" }));
  const meter = el("meter", "hit__meter", null, { min: 0, max: 1, low: t.suggest_threshold, high: t.answer_threshold,
    optimum: 1, value: Math.max(0, h.score), "aria-label": "score" });
  head.append(meter, el("span", "hit__score", score(h.score), { "data-testid": "try-hit-score" }));
  const passage = el("details", "hit__passage");
  passage.append(el("summary", null, `Section “${h.heading}”`));
  const body = el("div", "section__body");
  body.append(markdown(h.passage));
  passage.append(body);
  item.append(head, passage);
  return item;
}
