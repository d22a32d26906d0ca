// Trainers' page, right pane: what the trainers changed and how to take it back. Recent decisions (undo: the
// message returns to the inbox, and the example and regression case the decision added go) and the examples
// added on top of nlu.yml (remove one: the next model no longer learns it).

import { $, api, busy, clock, el, showAlert } from "./staff.core.js";

const ACTION_LABELS = {
  relabel: (intent) => `relabelled as ${intent}`,
  add_example: (intent) => `added as an example of ${intent}`,
  mark_oos: () => "marked out of scope",
  ignore: () => "ignored",
};

let announce = () => {};
let changed = async () => {};

export function setupData(callbacks) {
  announce = callbacks.announce;
  changed = callbacks.changed;
}

export function resetData() {
  $("reviews").replaceChildren();
  $("examples").replaceChildren();
  $("examples-count").textContent = "";
}

export async function refreshData() {
  await Promise.all([refreshReviews(), refreshExamples()]);
}

// --- recent decisions --------------------------------------------------------------------------------

async function refreshReviews() {
  let reviews;
  try {
    reviews = await api("GET", "/api/trainer/reviews?limit=30");
  } catch (e) {
    showAlert($("reviews-error"), `Recent decisions could not be loaded: ${e.message}`);
    return;
  }
  showAlert($("reviews-error"), "");
  $("reviews").replaceChildren(...reviews.map(renderReview));
  $("reviews-empty").hidden = reviews.length > 0;
}

function renderReview(review) {
  const item = el("li", "case", null, { "data-testid": "review", "data-message-id": review.message_id });
  item.append(el("p", "case__text", review.text, { "data-testid": "review-text" }));
  const meta = el("p", "case__meta muted");
  const label = (ACTION_LABELS[review.action] || (() => review.action))(review.intent);
  meta.append(el("strong", null, label, { "data-testid": "review-action" }), ` · ${review.reviewed_by}, ${clock(review.reviewed_at)}`);
  const undo = el("button", "btn btn--tiny", "Undo", { type: "button", "data-testid": "undo-review",
    title: "Put the message back in the inbox and take back what this decision added" });
  undo.addEventListener("click", () => busy(undo, $("reviews-error"), async () => {
    const result = await api("DELETE", `/api/trainer/reviews/${review.message_id}`);
    const removed = [result.removed_example && "its training example", result.removed_regression_case && "its regression case"]
      .filter(Boolean);
    announce(`Undone: the message is back in the inbox${removed.length ? `; ${removed.join(" and ")} removed` : ""}.`);
    await changed();
  }));
  item.append(meta, undo);
  return item;
}

// --- added examples ----------------------------------------------------------------------------------

async function refreshExamples() {
  let examples;
  try {
    examples = await api("GET", "/api/trainer/examples");
  } catch (e) {
    showAlert($("examples-error"), `Added examples could not be loaded: ${e.message}`);
    return;
  }
  showAlert($("examples-error"), "");
  $("examples-count").textContent = examples.length ? `(${examples.length})` : "";
  $("examples").replaceChildren(...examples.map(renderExample));
  $("examples-empty").hidden = examples.length > 0;
}

function renderExample(example) {
  const item = el("li", "case", null, { "data-testid": "example", "data-example-id": example.id });
  item.append(el("p", "case__text", example.text, { "data-testid": "example-text" }));
  const meta = el("p", "case__meta muted");
  meta.append(el("strong", null, example.intent || "out of scope", { "data-testid": "example-intent" }),
    ` · ${example.created_by}, ${clock(example.created_at)}`);
  const remove = el("button", "btn btn--tiny btn--danger", "Remove", { type: "button", "data-testid": "remove-example" });
  remove.addEventListener("click", () => busy(remove, $("examples-error"), async () => {
    await api("DELETE", `/api/trainer/examples/${example.id}`);
    announce("Example removed: the next retrain no longer learns it.");
    await refreshExamples();
  }));
  item.append(meta, remove);
  return item;
}
