// geneverse explore: the page. Talks to the JSON API of the same server only; text from the data is
// written with textContent (never as HTML).
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
  "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d",
  "#9edae5"];
const NO_PROGRAM = "#c8ccd4";
const ATLAS = "https://www.proteinatlas.org/";

const state = {
  info: null, key: null, gene: null, n: 10, analogy: null, pairs: null,
  map: null, view: null, hover: -1, selected: -1, neighbours: new Set(), grid: null, suggestion: -1,
};
const $ = (id) => document.getElementById(id);

// --- API --------------------------------------------------------------------------------------------
async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const response = await fetch(`${path}?${query}`);
  const text = await response.text();
  if (params.format === "markdown" && response.ok) return text;
  let body;
  try { body = JSON.parse(text); } catch (e) { throw new Error(`${path}: ${response.status}`); }
  if (!response.ok && response.status !== 202) {
    const error = new Error(body.error || `${path}: ${response.status}`);
    error.matches = body.matches || [];
    throw error;
  }
  body.status = response.status;
  return body;
}

function status(message, busy = false) {
  $("status").textContent = message || "";
  $("status").classList.toggle("busy", busy);
}

function fail(error, where = "status") {
  const matches = error.matches && error.matches.length && !error.message.includes("Close matches")
    ? ` Close matches: ${error.matches.join(", ")}.` : "";
  $(where).textContent = error.message + matches;
}

// --- tables -----------------------------------------------------------------------------------------
function geneButton(name) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "gene";
  button.textContent = name;
  button.addEventListener("click", () => selectGene(name));
  return button;
}

function atlasLink(url) {
  const a = document.createElement("a");
  if (typeof url === "string" && url.startsWith(ATLAS)) {
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = "HPA";
    a.title = "Human Protein Atlas";
  }
  return a;
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
  row.append(td);
}

function fillTable(id, results, score) {
  // no description column when the file has none
  $(id).classList.toggle("no-description", results.every((r) => !r.description));
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const result of results) {
    const row = document.createElement("tr");
    if ("gene_x" in result) {
      cell(row, geneButton(result.gene_x));
      cell(row, geneButton(result.gene_y));
      cell(row, result.similarity.toFixed(3), "num");
    } else {
      cell(row, geneButton(result.gene));
      cell(row, result[score].toFixed(3), "num");
      cell(row, result.program ?? "");
      cell(row, result.description ?? "", "description");
      cell(row, atlasLink(result.link));
    }
    body.append(row);
  }
}

// --- one gene ---------------------------------------------------------------------------------------
async function selectGene(name) {
  status(`looking up ${name}…`, true);
  hideSuggestions();
  try {
    const [card, similar] = await Promise.all([
      api("/api/gene", { gene: name }),
      api("/api/similar", { gene: name, n: state.n, key: state.key }),
    ]);
    const gene = card.results[0];
    state.gene = gene.gene;
    $("search").value = gene.gene;
    $("gene-card").hidden = false;
    $("gene-name").textContent = gene.gene + (gene.var_name !== gene.gene ? ` (${gene.var_name})` : "");
    $("gene-description").textContent = gene.description || "";
    const link = $("gene-link");
    if (gene.link.startsWith(ATLAS)) link.href = gene.link; else link.removeAttribute("href");
    $("gene-program").textContent = gene.program === null ? "no program" : `program ${gene.program}: central genes`;
    $("program-genes").replaceChildren(...gene.program_genes.map(geneButton));
    fillTable("neighbours", similar.results, "similarity");
    state.neighbours = new Set(similar.results.map((r) => r.gene));
    state.selected = state.map ? state.map.index.get(gene.gene) ?? -1 : -1;
    if (!$("analogy-c").value) $("analogy-c").value = gene.gene;
    status("");
    saveHash();
    drawMap();
  } catch (error) {
    status("");
    fail(error);
  }
}

// --- completion -------------------------------------------------------------------------------------
let typing = null;
function hideSuggestions() {
  $("suggestions").hidden = true;
  $("suggestions").replaceChildren();
  state.suggestion = -1;
}

async function suggest() {
  const prefix = $("search").value.trim();
  if (!prefix) { hideSuggestions(); return; }
  try {
    const { results } = await api("/api/genes", { prefix, n: 12 });
    if ($("search").value.trim() !== prefix) return; // typed on meanwhile
    const list = $("suggestions");
    list.replaceChildren(...results.map((result, i) => {
      const item = document.createElement("li");
      item.setAttribute("role", "option");
      item.dataset.gene = result.gene;
      item.id = `suggestion-${i}`;
      const name = document.createElement("span");
      name.textContent = result.gene;
      item.append(name);
      if (result.field !== "name") {
        const field = document.createElement("span");
        field.className = "field";
        field.textContent = `${result.field}: ${result.match}`;
        item.append(field);
      }
      item.addEventListener("mousedown", (event) => { event.preventDefault(); selectGene(result.gene); });
      return item;
    }));
    list.hidden = results.length === 0;
    state.suggestion = -1;
  } catch (error) { fail(error); }
}

function moveSuggestion(step) {
  const items = [...$("suggestions").children];
  if (!items.length) return;
  state.suggestion = (state.suggestion + step + items.length) % items.length;
  items.forEach((item, i) => item.setAttribute("aria-selected", String(i === state.suggestion)));
}

// --- analogy and pairs ------------------------------------------------------------------------------
async function runAnalogy(event) {
  event?.preventDefault();
  const [a, b, c] = ["a", "b", "c"].map((k) => $(`analogy-${k}`).value.trim());
  const method = $("analogy-method").value;
  $("analogy-error").textContent = `solving ${a} − ${b} + ${c}…`;
  try {
    const { results } = await api("/api/analogy", { a, b, c, method, n: state.n, key: state.key });
    state.analogy = { a, b, c, method };
    fillTable("analogy-results", results, "score");
    $("analogy-error").textContent = "";
    saveHash();
  } catch (error) { fail(error, "analogy-error"); }
}

async function runPairs(event) {
  event?.preventDefault();
  const [a, b] = ["a", "b"].map((k) => $(`pairs-${k}`).value.trim());
  $("pairs-error").textContent = `searching every pair for ${a} − ${b}…`;
  try {
    const { results } = await api("/api/pairs", { a, b, n: state.n, key: state.key });
    state.pairs = { a, b };
    fillTable("pairs-results", results, "similarity");
    $("pairs-error").textContent = "";
    saveHash();
  } catch (error) { fail(error, "pairs-error"); }
}

// --- the gene map -----------------------------------------------------------------------------------
async function loadMap() {
  const key = state.key;
  $("map-status").textContent = "computing the gene map (UMAP)…";
  state.map = null;
  drawMap();
  for (;;) {
    let body;
    try { body = await api("/api/map", { key }); } catch (error) { $("map-status").textContent = error.message; return; }
    if (key !== state.key) return; // another embedding was picked meanwhile
    if (body.status === 202) { await new Promise((r) => setTimeout(r, 800)); continue; }
    const map = body.results[0];
    map.index = new Map(map.genes.map((g, i) => [g, i]));
    state.map = map;
    state.selected = state.gene ? map.index.get(state.gene) ?? -1 : -1;
    $("map-status").textContent = "";
    buildLegend(); // before fitting: the legend takes room from the map
    fitView();
    drawMap();
    document.body.dataset.mapReady = "true";
    return;
  }
}

function fitView() {
  const { x, y } = state.map;
  const canvas = $("map");
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < x.length; i++) {
    x0 = Math.min(x0, x[i]); x1 = Math.max(x1, x[i]); y0 = Math.min(y0, y[i]); y1 = Math.max(y1, y[i]);
  }
  const width = canvas.clientWidth, height = canvas.clientHeight, pad = 24;
  const scale = Math.min((width - 2 * pad) / Math.max(x1 - x0, 1e-9), (height - 2 * pad) / Math.max(y1 - y0, 1e-9));
  state.view = { scale, tx: width / 2 - scale * (x0 + x1) / 2, ty: height / 2 + scale * (y0 + y1) / 2, moved: false };
}

const toScreen = (i) => [state.view.tx + state.view.scale * state.map.x[i], state.view.ty - state.view.scale * state.map.y[i]];

function colour(i) {
  const p = state.map.program[i];
  return p === null ? NO_PROGRAM : PALETTE[p % PALETTE.length];
}

function radius() {
  return Math.max(1.5, Math.min(5, 2.2 * Math.sqrt(state.view.scale / 40)));
}

function buildGrid() {
  // screen-space buckets of 16 px for hover and click look-ups
  const grid = new Map();
  for (let i = 0; i < state.map.x.length; i++) {
    const [sx, sy] = toScreen(i);
    const key = `${Math.floor(sx / 16)},${Math.floor(sy / 16)}`;
    if (!grid.has(key)) grid.set(key, []);
    grid.get(key).push(i);
  }
  state.grid = grid;
}

function nearest(px, py, within = 10) {
  if (!state.grid) return -1;
  let best = -1, bestDistance = within * within;
  const gx = Math.floor(px / 16), gy = Math.floor(py / 16);
  for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
    for (const i of state.grid.get(`${gx + dx},${gy + dy}`) || []) {
      const [sx, sy] = toScreen(i);
      const d = (sx - px) ** 2 + (sy - py) ** 2;
      if (d < bestDistance) { bestDistance = d; best = i; }
    }
  }
  return best;
}

function drawPoints(width, height) {
  // the points, drawn once per view into an offscreen canvas; hover and selection are drawn over it
  const ratio = window.devicePixelRatio || 1;
  const layer = document.createElement("canvas");
  layer.width = Math.round(width * ratio);
  layer.height = Math.round(height * ratio);
  const context = layer.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  const r = radius();
  for (let i = 0; i < state.map.x.length; i++) {
    const [sx, sy] = toScreen(i);
    if (sx < -r || sy < -r || sx > width + r || sy > height + r) continue;
    context.fillStyle = colour(i);
    context.beginPath();
    context.arc(sx, sy, r, 0, 2 * Math.PI);
    context.fill();
  }
  return layer;
}

function drawMap() {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext("2d");
  context.setTransform(1, 0, 0, 1, 0, 0);
  if (!state.map || !state.view) {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    return;
  }
  const viewKey = [state.view.scale, state.view.tx, state.view.ty, width, height, ratio, state.key].join();
  if (!state.layer || state.layerKey !== viewKey) {
    state.layer = drawPoints(width, height);
    state.layerKey = viewKey;
    buildGrid();
  }
  context.drawImage(state.layer, 0, 0);
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const r = radius();
  const ring = (i, size, stroke) => {
    const [sx, sy] = toScreen(i);
    context.beginPath();
    context.arc(sx, sy, size, 0, 2 * Math.PI);
    context.lineWidth = 2;
    context.strokeStyle = stroke;
    context.stroke();
  };
  const labels = []; // drawn label boxes: a label that would overlap one is left out (hover names it)
  const label = (i, size) => {
    const [sx, sy] = toScreen(i);
    context.font = "600 12px system-ui, sans-serif";
    const box = [sx + size + 3, sy - 8, context.measureText(state.map.genes[i]).width, 14];
    if (labels.some((b) => box[0] < b[0] + b[2] && b[0] < box[0] + box[2] && box[1] < b[1] + b[3] && b[1] < box[1] + box[3])) return;
    labels.push(box);
    context.fillStyle = "rgb(255 255 255 / 0.85)";
    context.fillRect(box[0] - 1, box[1], box[2] + 2, box[3]);
    context.fillStyle = "#1d2330";
    context.fillText(state.map.genes[i], box[0], sy + 4);
  };
  const neighbours = [...state.neighbours].map((g) => state.map.index.get(g)).filter((i) => i !== undefined && i !== state.selected);
  neighbours.forEach((i) => ring(i, r + 3, "#2b6cb0"));
  if (state.selected >= 0) {
    ring(state.selected, r + 5, "#111");
    label(state.selected, r + 5); // the selected gene's name first: it is never left out
  }
  neighbours.forEach((i) => label(i, r + 3));
  if (state.hover >= 0) ring(state.hover, r + 3, "#555");
}

function buildLegend() {
  const legend = $("legend");
  legend.replaceChildren(...state.map.programs.map((name, p) => {
    const span = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = PALETTE[p % PALETTE.length];
    span.append(dot, document.createTextNode(name));
    return span;
  }));
}

function mapEvents() {
  const canvas = $("map");
  let drag = null;
  canvas.addEventListener("mousemove", (event) => {
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    if (drag) {
      state.view.tx += px - drag.x; state.view.ty += py - drag.y;
      state.view.moved = true;
      drag.moved ||= Math.abs(px - drag.x0) + Math.abs(py - drag.y0) > 3;
      drag.x = px; drag.y = py;
      drawMap();
      return;
    }
    const i = nearest(px, py);
    const tooltip = $("tooltip");
    if (i !== state.hover) { state.hover = i; drawMap(); }
    if (i < 0) { tooltip.hidden = true; return; }
    const program = state.map.program[i] === null ? "no program" : `program ${state.map.programs[state.map.program[i]]}`;
    tooltip.textContent = `${state.map.genes[i]} · ${program}`;
    tooltip.style.left = `${px + 12}px`;
    tooltip.style.top = `${py + 10}px`;
    tooltip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; state.hover = -1; drag = null; drawMap(); });
  canvas.addEventListener("mousedown", (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    drag = { x, y, x0: x, y0: y, moved: false };
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("mouseup", (event) => {
    canvas.classList.remove("dragging");
    const moved = drag && drag.moved;
    drag = null;
    if (moved || !state.map) return;
    const rect = canvas.getBoundingClientRect();
    const i = nearest(event.clientX - rect.left, event.clientY - rect.top);
    if (i >= 0) selectGene(state.map.genes[i]);
  });
  canvas.addEventListener("wheel", (event) => {
    if (!state.view) return;
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    const factor = Math.exp(-event.deltaY * 0.0015);
    state.view.tx = px - (px - state.view.tx) * factor;
    state.view.ty = py - (py - state.view.ty) * factor;
    state.view.scale *= factor;
    state.view.moved = true;
    drawMap();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { if (state.map) { fitView(); drawMap(); } });
  // a resized map is fitted again unless it was zoomed or panned
  new ResizeObserver(() => { if (state.map && (!state.view || !state.view.moved)) fitView(); drawMap(); }).observe(canvas);
}

// --- export -----------------------------------------------------------------------------------------
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const stem = () => `geneverse-${state.gene || "explore"}-${state.key}`.replace(/[^A-Za-z0-9_.-]+/g, "_");

// text from the file as literal markdown, as gv.io.to_markdown's escape writes it: HTML characters as
// entities, markdown syntax backslash-escaped
function markdownText(text) {
  const entities = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
  return String(text).split(/\r?\n/).join(" ").replace(/[&<>"]/g, (c) => entities[c]).replace(/([\\`*_[\]|~])/g, "\\$1");
}

async function exportMarkdown() {
  const sections = [];
  const format = "markdown";
  try {
    if (state.gene) sections.push(await api("/api/similar", { gene: state.gene, n: state.n, key: state.key, format }));
    if (state.analogy) sections.push(await api("/api/analogy", { ...state.analogy, n: state.n, key: state.key, format }));
    if (state.pairs) sections.push(await api("/api/pairs", { ...state.pairs, n: state.n, key: state.key, format }));
  } catch (error) { fail(error); return; }
  if (!sections.length) { status("Nothing to export yet: search a gene, or run an analogy or a pair search."); return; }
  const text = `# geneverse explore: ${markdownText(state.info.title)} (${markdownText(state.key)})\n\n${sections.join("\n")}`;
  download(new Blob([text], { type: "text/markdown" }), `${stem()}.md`);
}

function exportPng() {
  $("map").toBlob((blob) => download(blob, `${stem()}-map.png`), "image/png");
}

function exportSvg() {
  if (!state.map) { status("The gene map is not ready yet."); return; }
  const canvas = $("map");
  const width = canvas.clientWidth, height = canvas.clientHeight, r = radius();
  const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`];
  for (let i = 0; i < state.map.x.length; i++) {
    const [sx, sy] = toScreen(i);
    if (sx < -r || sy < -r || sx > width + r || sy > height + r) continue;
    parts.push(`<circle cx="${sx.toFixed(1)}" cy="${sy.toFixed(1)}" r="${r.toFixed(1)}" fill="${colour(i)}"><title>${escape(state.map.genes[i])}</title></circle>`);
  }
  if (state.selected >= 0) {
    const [sx, sy] = toScreen(state.selected);
    parts.push(`<circle cx="${sx.toFixed(1)}" cy="${sy.toFixed(1)}" r="${(r + 5).toFixed(1)}" fill="none" stroke="#111" stroke-width="2"/>`);
    parts.push(`<text x="${(sx + r + 8).toFixed(1)}" y="${(sy + 4).toFixed(1)}" font-family="sans-serif" font-size="12" font-weight="600">${escape(state.map.genes[state.selected])}</text>`);
  }
  parts.push("</svg>");
  download(new Blob([parts.join("\n")], { type: "image/svg+xml" }), `${stem()}-map.svg`);
}

// --- state in the address (shareable, survives reloads) -------------------------------------------
function saveHash() {
  const params = new URLSearchParams();
  if (state.key && state.key !== state.info.default_key) params.set("key", state.key);
  if (state.gene) params.set("gene", state.gene);
  if (state.analogy) params.set("analogy", [state.analogy.a, state.analogy.b, state.analogy.c].join(","));
  if (state.analogy && state.analogy.method !== "3cosadd") params.set("method", state.analogy.method);
  if (state.pairs) params.set("pairs", [state.pairs.a, state.pairs.b].join(","));
  history.replaceState(null, "", `#${params}`);
}

async function restoreHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = state.info.keys.includes(params.get("key")) ? params.get("key") : state.info.default_key;
  if (key !== state.key) {
    state.key = $("key").value = key;
    loadMap();
  }
  const analogy = (params.get("analogy") || "").split(",");
  if (analogy.length === 3) {
    ["a", "b", "c"].forEach((k, i) => { $(`analogy-${k}`).value = analogy[i]; });
    $("analogy-method").value = params.get("method") === "3cosmul" ? "3cosmul" : "3cosadd";
    runAnalogy();
  }
  const pairs = (params.get("pairs") || "").split(",");
  if (pairs.length === 2) {
    ["a", "b"].forEach((k, i) => { $(`pairs-${k}`).value = pairs[i]; });
    runPairs();
  }
  if (params.get("gene")) await selectGene(params.get("gene"));
}

// --- start ------------------------------------------------------------------------------------------
async function start() {
  const { results: [info] } = await api("/api/info");
  state.info = info;
  document.title = `geneverse explore: ${info.title}`;
  $("title").textContent = `${info.title} · ${info.genes.toLocaleString()} genes`;
  const picker = $("key");
  picker.replaceChildren(...info.keys.map((key) => {
    const option = document.createElement("option");
    option.value = option.textContent = key;
    return option;
  }));
  picker.addEventListener("change", () => {
    state.key = picker.value;
    saveHash();
    loadMap();
    if (state.gene) selectGene(state.gene);
    if (state.analogy) runAnalogy();
    if (state.pairs) runPairs();
  });
  $("search").placeholder = `Search a gene, e.g. ${info.example}: symbol, Ensembl ID or alias`;
  $("search").addEventListener("input", () => {
    hideSuggestions(); // suggestions for older text never answer Enter
    clearTimeout(typing);
    typing = setTimeout(suggest, 60);
  });
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); moveSuggestion(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); moveSuggestion(-1); }
    else if (event.key === "Escape") hideSuggestions();
    else if (event.key === "Enter") {
      event.preventDefault();
      const items = [...$("suggestions").children];
      // the highlighted suggestion, else the typed gene, else the first suggestion
      const typed = $("search").value.trim().toLowerCase();
      const chosen = items[state.suggestion] || items.find((item) => item.dataset.gene.toLowerCase() === typed) || items[0];
      const name = chosen ? chosen.dataset.gene : $("search").value.trim();
      if (name) selectGene(name);
    }
  });
  $("search").addEventListener("blur", () => setTimeout(hideSuggestions, 150));
  $("n").addEventListener("change", () => {
    state.n = Math.max(1, Math.min(500, parseInt($("n").value, 10) || 10));
    $("n").value = state.n;
    if (state.gene) selectGene(state.gene);
  });
  $("analogy-form").addEventListener("submit", runAnalogy);
  $("pairs-form").addEventListener("submit", runPairs);
  $("export-md").addEventListener("click", exportMarkdown);
  $("export-png").addEventListener("click", exportPng);
  $("export-svg").addEventListener("click", exportSvg);
  mapEvents();
  window.addEventListener("hashchange", restoreHash); // an address typed or pasted
  await restoreHash(); // picks the embedding (from the address, else the default) and loads its map
  document.body.dataset.ready = "true";
}

// for the browser console and the tests: the page's state, and where a gene is drawn (page pixels)
window.geneverseExplorer = {
  state,
  position(gene) {
    const i = state.map ? state.map.index.get(gene) : undefined;
    if (i === undefined || !state.view) return null;
    const [x, y] = toScreen(i);
    const rect = $("map").getBoundingClientRect();
    return [rect.left + x, rect.top + y];
  },
};

start().catch(fail);
