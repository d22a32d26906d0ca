// Knowledge editors' page, shared pieces: the status line, the confirmation dialog, the configured teams and
// the markdown renderer for previews. Article text is untrusted: the renderer builds every element itself and
// puts all text in with textContent / text nodes; nothing is ever parsed as HTML.

import { $, el, link } from "./staff.core.js";

// --- status and confirmation -----------------------------------------------------------------------

let statusTimer = null;

// A short confirmation of what just happened (screen readers hear it: role=status).
export function announce(message) {
  const node = $("status");
  node.textContent = message;
  node.hidden = false;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { node.hidden = true; }, 8000);
}

// A modal question in the page (no blocking browser dialog); resolves true when confirmed.
export function confirmAction({ title, text, ok, danger = false }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  const button = $("confirm-ok");
  button.textContent = ok;
  button.className = danger ? "btn btn--danger-solid" : "btn btn--primary";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    button.focus();
  });
}

// --- teams (from the stats response) ------------------------------------------------------------------

export const teams = { list: [] }; // [{key, name}] from the teams config

export function teamName(key) {
  if (!key) return "";
  const team = teams.list.find((t) => t.key === key);
  return team ? team.name : key;
}

// --- markdown, built node by node ---------------------------------------------------------------------

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
// **bold**, `code`, [text](url), *emphasis*: everything else stays plain text (underscores too: they are
// common in ids and rarely meant as emphasis).
const INLINE = /(\*\*[^*\n]+?\*\*|`[^`\n]+`|\[[^\]\n]+\]\([^)\s]+\)|\*[^*\s][^*\n]*?[^*\s]\*|\*[^*\s]\*)/g;

// Inline markup of one paragraph as nodes.
export function inline(text) {
  const fragment = document.createDocumentFragment();
  String(text).split(INLINE).forEach((part, i) => {
    if (!part) return;
    if (i % 2 === 0) { fragment.append(document.createTextNode(part)); return; }
    if (part.startsWith("**")) fragment.append(el("strong", null, part.slice(2, -2)));
    else if (part.startsWith("`")) fragment.append(el("code", null, part.slice(1, -1)));
    else if (part.startsWith("[")) {
      const close = part.indexOf("](");
      fragment.append(link(part.slice(close + 2, -1), part.slice(1, close)));
    } else fragment.append(el("em", null, part.slice(1, -1)));
  });
  return fragment;
}

function paragraph(tag, lines) {
  const node = el(tag);
  node.append(inline(lines.map((l) => l.trim()).join(" ")));
  return node;
}

// A section's markdown as DOM: paragraphs, headings, bullet and numbered lists, quotes and code blocks.
export function markdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let para = [];
  let list = null; // {node, ordered}
  const flush = () => {
    if (para.length) fragment.append(paragraph("p", para));
    para = [];
  };
  const endList = () => { list = null; };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (FENCE.test(line)) {
      flush(); endList();
      const code = [];
      for (i += 1; i < lines.length && !FENCE.test(lines[i]); i += 1) code.push(lines[i]);
      const pre = el("pre");
      pre.append(el("code", null, code.join("\n")));
      fragment.append(pre);
      continue;
    }
    if (!line.trim()) { flush(); endList(); continue; }
    const heading = HEADING.exec(line);
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    const quote = QUOTE.exec(line);
    if (heading) {
      flush(); endList();
      fragment.append(paragraph("h5", [heading[2]]));
    } else if (bullet || numbered) {
      flush();
      const ordered = Boolean(numbered);
      if (!list || list.ordered !== ordered) {
        list = { node: el(ordered ? "ol" : "ul"), ordered };
        fragment.append(list.node);
      }
      list.node.append(paragraph("li", [(bullet || numbered)[1]]));
    } else if (quote) {
      flush(); endList();
      fragment.append(paragraph("blockquote", [quote[1]]));
    } else if (list && /^\s+/.test(line)) {
      list.node.lastChild.append(document.createTextNode(" "), inline(line.trim())); // a wrapped list item
    } else {
      endList();
      para.push(line);
    }
  }
  flush();
  return fragment;
}
