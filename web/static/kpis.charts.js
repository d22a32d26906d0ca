// Small inline SVG charts for the KPI page: bars for counts, a line for rates and scores.
// No library and no network; every label goes in with textContent (a <title> per bar or point is its tooltip).

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 150;
const PAD = { left: 34, right: 8, top: 10, bottom: 22 };
const INNER_W = W - PAD.left - PAD.right;
const INNER_H = H - PAD.top - PAD.bottom;

function node(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (text !== undefined && text !== null) n.textContent = String(text);
  return n;
}

function frame(title, testId) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.testid = testId;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart__svg" });
  svg.appendChild(node("title", {}, title));
  figure.append(caption, svg);
  return { figure, svg };
}

function axes(svg, points, topLabel, bottomLabel) {
  const baseline = PAD.top + INNER_H;
  svg.appendChild(node("line", { x1: PAD.left, y1: baseline, x2: W - PAD.right, y2: baseline, class: "chart__axis" }));
  svg.appendChild(node("line", { x1: PAD.left, y1: PAD.top, x2: W - PAD.right, y2: PAD.top, class: "chart__grid" }));
  svg.appendChild(node("text", { x: PAD.left - 4, y: PAD.top + 4, "text-anchor": "end", class: "chart__label" }, topLabel));
  svg.appendChild(node("text", { x: PAD.left - 4, y: baseline, "text-anchor": "end", class: "chart__label" }, bottomLabel));
  if (points.length) {
    svg.appendChild(node("text", { x: PAD.left, y: H - 6, class: "chart__label" }, points[0].label));
    if (points.length > 1) {
      svg.appendChild(node("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "chart__label" },
        points[points.length - 1].label));
    }
  }
}

function empty(svg) {
  svg.appendChild(node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart__empty" }, "No data in this window"));
}

// Bars: points = [{label, value, tip}]; `stack` (optional) draws a second value inside each bar.
export function barChart(title, testId, points, { stack } = {}) {
  const { figure, svg } = frame(title, testId);
  const max = Math.max(0, ...points.map((p) => p.value));
  axes(svg, points, niceMax(max), "0");
  if (!max) { empty(svg); return figure; }
  const top = niceMax(max);
  const slot = INNER_W / points.length;
  const width = Math.max(1, slot * 0.75);
  points.forEach((p, i) => {
    const x = PAD.left + i * slot + (slot - width) / 2;
    const h = (p.value / top) * INNER_H;
    const bar = node("rect", { x: x.toFixed(2), y: (PAD.top + INNER_H - h).toFixed(2), width: width.toFixed(2),
      height: h.toFixed(2), class: "chart__bar", "data-value": p.value });
    bar.appendChild(node("title", {}, p.tip));
    svg.appendChild(bar);
    if (stack && p[stack]) {
      const sh = (p[stack] / top) * INNER_H;
      const part = node("rect", { x: x.toFixed(2), y: (PAD.top + INNER_H - sh).toFixed(2), width: width.toFixed(2),
        height: sh.toFixed(2), class: "chart__bar chart__bar--part" });
      part.appendChild(node("title", {}, p.tip));
      svg.appendChild(part);
    }
  });
  return figure;
}

// A line over [min, max]; null values leave a gap. points = [{label, value, tip}].
export function lineChart(title, testId, points, { min, max, format }) {
  const { figure, svg } = frame(title, testId);
  axes(svg, points, format(max), format(min));
  if (!points.some((p) => p.value !== null && p.value !== undefined)) { empty(svg); return figure; }
  const slot = points.length > 1 ? INNER_W / (points.length - 1) : 0;
  const xy = (p, i) => [PAD.left + (points.length > 1 ? i * slot : INNER_W / 2),
    PAD.top + INNER_H - ((p.value - min) / (max - min)) * INNER_H];
  let path = "";
  let pen = false;
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) { pen = false; return; }
    const [x, y] = xy(p, i);
    path += `${pen ? "L" : "M"}${x.toFixed(2)} ${y.toFixed(2)} `;
    pen = true;
  });
  svg.appendChild(node("path", { d: path.trim(), class: "chart__line" }));
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const [x, y] = xy(p, i);
    const dot = node("circle", { cx: x.toFixed(2), cy: y.toFixed(2), r: 2.5, class: "chart__dot", "data-value": p.value });
    dot.appendChild(node("title", {}, p.tip));
    svg.appendChild(dot);
  });
  return figure;
}

function niceMax(value) {
  if (value <= 5) return Math.max(1, Math.ceil(value));
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}
