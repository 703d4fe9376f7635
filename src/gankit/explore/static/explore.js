// gankit explore: the page's logic. Plain JavaScript, no build step, no network beyond this server.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { model: {}, rows: [], offset: 0, grid: null, picks: { a: null, b: null },
                next: "a", noiseSeed: 0, samples: [], interp: [] };
const COLORS = ["#d9480f", "#1971c2", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#5c940d"];

function showError(msg) {
  const box = $("error");
  if (!msg) { box.hidden = true; return; }
  box.textContent = msg; box.hidden = false;
}

async function api(path, options) {
  const resp = await fetch(path, options);
  let body;
  try { body = await resp.json(); } catch (e) { body = { error: `the server answered ${resp.status}` }; }
  if (!resp.ok || body.error) { showError(body.error); throw new Error(body.error); }
  showError(null);
  return body;
}

function img(src, alt, cls) {
  const el = document.createElement("img");
  el.src = src; el.alt = alt || ""; if (cls) el.className = cls;
  return el;
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (v === null || v === undefined) return "–";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// ------------------------------------------------------------------------ curves (SVG charts)
const SKIP = new Set(["step", "seconds", "img_per_s"]);
function chartGroups(rows) {
  const keys = new Set();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === "number" && !SKIP.has(k) && !k.startsWith("lr_")) keys.add(k);
  const all = [...keys];
  const groups = [
    ["losses", all.filter((k) => k.startsWith("loss"))],
    ["D(x) and D(G(z))", all.filter((k) => /^D(_\w+)?\(/.test(k))],
    ["gradient norms", all.filter((k) => k.startsWith("grad_norm"))],
  ];
  const used = new Set(groups.flatMap((g) => g[1]));
  for (const k of all) if (!used.has(k)) groups.push([k, [k]]);
  return groups.filter((g) => g[1].length);
}

function drawChart(title, keys, rows) {
  const rowsOfKeys = keys.length > 1 ? Math.ceil(keys.length / 2) : 0;  // legend, 2 per line
  const W = 270, H = 150 + 11 * rowsOfKeys, L = 38, B = 18, T = 18 + 11 * rowsOfKeys;
  const pts = keys.map((k) => rows.filter((r) => typeof r[k] === "number" && isFinite(r[k])).map((r) => [r.step, r[k]]));
  const flat = pts.flat();
  if (!flat.length) return null;
  let [x0, x1] = [Math.min(...flat.map((p) => p[0])), Math.max(...flat.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...flat.map((p) => p[1])), Math.max(...flat.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - 4);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  let svg = `<svg class="chart" width="${W}" height="${H}" role="img" aria-label="${title}">`;
  svg += `<text x="${L}" y="11">${title}</text>`;
  svg += `<text x="2" y="${T + 8}">${fmt(y1)}</text><text x="2" y="${H - B}">${fmt(y0)}</text>`;
  svg += `<text x="${L}" y="${H - 4}">${x0}</text><text x="${W - 4}" y="${H - 4}" text-anchor="end">step ${x1}</text>`;
  svg += `<line x1="${L}" y1="${H - B}" x2="${W - 4}" y2="${H - B}" stroke="#cbd2d9"/>`;
  pts.forEach((p, i) => {
    const d = p.map((q) => `${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(" ");
    svg += `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.3" points="${d}"/>`;
  });
  if (keys.length > 1) keys.forEach((k, i) => {
    const x = i % 2 ? W / 2 + 10 : L, y = 23 + 11 * Math.floor(i / 2);
    svg += `<text x="${x}" y="${y}" style="fill:${COLORS[i % COLORS.length]}">— ${k}</text>`;
  });
  svg += "</svg>";
  const fig = document.createElement("figure");
  fig.innerHTML = svg;
  return fig;
}

function drawCharts() {
  const box = $("charts");
  box.replaceChildren();
  for (const [title, keys] of chartGroups(state.rows)) {
    const fig = drawChart(title, keys, state.rows);
    if (fig) box.appendChild(fig);
  }
  const last = state.rows[state.rows.length - 1];
  $("curves-note").textContent = last ? `${state.rows.length} rows, last at step ${last.step}; refreshed every 3 s.`
                                      : "metrics.jsonl is empty so far; refreshed every 3 s.";
}

async function pollMetrics() {
  try {
    const r = await api(`/api/metrics?offset=${state.offset}`);
    if (r.restart) state.rows = [];
    if (r.rows.length || !state.rows.length) { state.rows.push(...r.rows); drawCharts(); }
    state.offset = r.offset;
    $("live").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) { /* shown */ }
}

// ------------------------------------------------------------------------ run info, timeline
async function loadInfo() {
  const info = await api("/api/info");
  state.model = info.model;
  $("run-name").textContent = info.name;
  document.title = `gankit explore: ${info.name}`;
  const m = info.model;
  $("run-kind").textContent = m.kind === "none" ? "no checkpoint yet" : `${m.kind}${m.step !== null ? `, step ${m.step}` : ""}`;
  const warn = $("warnings");
  warn.replaceChildren();
  for (const w of info.warnings) { const li = document.createElement("li"); li.textContent = w; warn.appendChild(li); }
  if (!info.warnings.length) { const li = document.createElement("li"); li.className = "ok"; li.textContent = "no warnings"; warn.appendChild(li); }
  $("summary").innerHTML = "";
  for (const [k, v] of Object.entries(info.summary)) {
    const tr = $("summary").insertRow(); tr.insertCell().textContent = k;
    const td = tr.insertCell(); td.textContent = fmt(v); if (typeof v === "number") td.className = "num";
  }
  $("config").textContent = info.config || "config.yaml is absent";
  state.samples = info.samples;
  $("timeline-panel").hidden = !info.samples.length;
  if (info.samples.length) {
    const s = $("timeline"), atEnd = +s.value === +s.max;
    s.max = info.samples.length - 1;
    if (atEnd) s.value = s.max;
    showTimeline();
  }
  return m;
}

function showTimeline() {
  const s = state.samples[+$("timeline").value];
  if (!s) return;
  $("timeline-step").textContent = `step ${s.step}`;
  $("timeline-img").src = `/files/${s.file}?v=${s.step}`;
}

function setupPanels(m) {
  const image = m.kind === "image";
  $("generator-panel").hidden = !image;
  $("interp-panel").hidden = !image;
  $("edit-panel").hidden = !(image && m.editable);
  $("mix-panel").hidden = !(image && m.mapping);
  $("translate-panel").hidden = m.kind !== "translation";
  $("toy-panel").hidden = !(m.kind === "toy" && m.toy_steps && m.toy_steps.length);
  for (const el of document.querySelectorAll(".w-only")) el.hidden = !m.mapping;
  $("psi-note").textContent = m.mapping ? "ψ pulls w towards the average w (truncation in W)."
                                        : "ψ pulls z towards the prior's mean, ψ·z.";
  if (m.num_classes) {
    $("class-controls").hidden = false;
    const sel = $("klass");
    sel.length = 1;
    for (let c = 0; c < m.num_classes; c++) sel.add(new Option(String(c), String(c)));
  }
  const target = $("edit-target");
  if (!target.length) { for (let c = 0; c < 10; c++) target.add(new Option(String(c), String(c))); target.value = "3"; }
  if (image) drawGrid();
  if (m.kind === "translation") setupTranslate(m);
  if (m.kind === "toy" && m.toy_steps && m.toy_steps.length) {
    $("toy-step").max = m.toy_steps.length - 1; $("toy-step").value = m.toy_steps.length - 1;
    drawToy();
  }
}

// ------------------------------------------------------------------------ sample grid, picks
function gridQuery() {
  const q = new URLSearchParams({ seed: $("seed").value, n: $("n").value, psi: $("psi").value });
  if ($("per-class").checked) { q.set("per_class", "true"); q.set("n", String(Math.min(+$("n").value, 16))); }
  else if ($("klass").value !== "") q.set("class", $("klass").value);
  return q;
}

async function drawGrid() {
  const q = gridQuery();
  const g = await api(`/api/grid?${q}`);
  state.grid = g;
  const box = $("grid");
  box.replaceChildren();
  g.rows.forEach((row) => {
    if ($("per-class").checked) { const d = document.createElement("div"); d.className = "row-label"; d.textContent = `class ${row.class}`; box.appendChild(d); }
    row.images.forEach((src, i) => {
      const el = img(src, `sample ${i}`, "pixel");
      const klass = $("per-class").checked ? row.class : (row.class ?? null);
      el.dataset.index = i; el.dataset.klass = klass === null ? "" : klass;
      el.addEventListener("click", () => pick(el, { seed: g.seed, n: g.n, index: i, klass }));
      box.appendChild(el);
    });
  });
  markPicks();
}

function pick(el, p) {
  p.src = el.src;
  state.picks[state.next] = p;
  $(`pick-${state.next}`).src = el.src;
  state.next = state.next === "a" ? "b" : "a";
  markPicks();
}

function markPicks() {
  for (const el of $("grid").querySelectorAll("img")) {
    el.classList.remove("a", "b");
    for (const s of ["a", "b"]) {
      const p = state.picks[s];
      if (p && state.grid && p.seed === state.grid.seed && p.n === state.grid.n && String(p.index) === el.dataset.index
          && String(p.klass ?? "") === el.dataset.klass) el.classList.add(s);
    }
  }
}

function pickQuery(q, prefix, p) {
  if (!p) throw showError(`pick sample ${prefix ? prefix[0].toUpperCase() : "A"} first: click one in the grid`);
  q.set(`${prefix}seed`, p.seed); q.set(`${prefix}n`, p.n); q.set(`${prefix}index`, p.index);
  if (p.klass !== null && p.klass !== undefined && p.klass !== "") q.set(`${prefix}class`, p.klass);
}

// ------------------------------------------------------------------------ interpolation
async function runInterp() {
  const q = new URLSearchParams({ steps: $("interp-steps").value, mode: $("interp-mode").value,
                                  space: state.model.mapping ? $("interp-space").value : "z" });
  try { pickQuery(q, "a_", state.picks.a); pickQuery(q, "b_", state.picks.b); } catch (e) { return; }
  const r = await api(`/api/interpolate?${q}`);
  state.interp = r.images;
  $("interp-strip").replaceChildren(...r.images.map((s, i) => img(s, `t ${i}`)));
  $("interp-t").max = r.images.length - 1; $("interp-t").value = 0;
  showFrame();
}
function showFrame() { const s = state.interp[+$("interp-t").value]; if (s) $("interp-frame").src = s; }

// ------------------------------------------------------------------------ editing
async function runEdit() {
  const q = new URLSearchParams({ target: $("edit-target").value, mode: $("edit-mode").value,
                                  steps: $("edit-steps").value, space: state.model.mapping ? $("edit-space").value : "z" });
  try { pickQuery(q, "", state.picks.a); } catch (e) { return; }
  $("edit-run").disabled = true; $("edit-figures").innerHTML = "<tr><td>editing…</td></tr>";
  try {
    const r = await api(`/api/edit?${q}`);
    $("edit-before").src = r.before; $("edit-after").src = r.after;
    const rows = [["success", r.success ? "yes" : "no"], ["classifier: before → after", `${r.label_before} → ${r.label_after}`],
                  ["p(target) before", r.p_target_before], ["p(target) after", r.p_target_after],
                  ["entanglement", r.entanglement], [`distance moved in ${r.space}`, r.distance]];
    $("edit-figures").innerHTML = "";
    for (const [k, v] of rows) { const tr = $("edit-figures").insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = fmt(v); }
  } catch (e) { $("edit-figures").innerHTML = ""; } finally { $("edit-run").disabled = false; }
}

// ------------------------------------------------------------------------ style mixing
async function runMix(resample) {
  const q = new URLSearchParams({ group: $("mix-group").value });
  try { pickQuery(q, "a_", state.picks.a); pickQuery(q, "b_", state.picks.b); } catch (e) { return; }
  if (resample) { state.noiseSeed += 1; q.set("noise_seed", state.noiseSeed); }
  const r = await api(`/api/mix?${q}`);
  $("mix-a").src = r.a; $("mix-b").src = r.b; $("mix-out").src = r.mix;
  $("mix-caption").textContent = `A with B's ${r.group} layers (ws ${r.layers.join(",")})`;
  $("mix-noise-strip").replaceChildren(...(r.noise || []).map((s, i) => img(s, `noise draw ${i}`)));
}

// ------------------------------------------------------------------------ translation
async function setupTranslate(m) {
  const sel = $("tr-direction");
  if (!sel.length) for (const d of m.directions) sel.add(new Option(d, d));
  await loadTests();
}
async function loadTests() {
  const box = $("tr-tests");
  box.replaceChildren();
  if (!state.model.test_images) return;
  const domain = $("tr-direction").value === "AtoB" ? "A" : "B";
  try {
    const r = await api(`/api/test_images?domain=${domain}&n=16`);
    r.images.forEach((s, i) => { const el = img(s, `test ${i}`, "pixel"); el.addEventListener("click", () => translateTest(i)); box.appendChild(el); });
  } catch (e) { /* shown */ }
}
function showTranslation(r) {
  $("tr-source").src = r.source; $("tr-out").src = r.translated;
  if (r.reconstructed) { $("tr-back").src = r.reconstructed; $("tr-back-caption").textContent = `reconstructed (L1 ${fmt(r.cycle_l1)})`; }
}
async function translateTest(i) {
  showTranslation(await api(`/api/translate?direction=${$("tr-direction").value}&index=${i}`));
}
async function translateUpload() {
  const f = $("tr-upload").files[0];
  if (!f) return;
  const form = new FormData();
  form.append("image", f); form.append("direction", $("tr-direction").value);
  try { showTranslation(await api("/api/translate", { method: "POST", body: form })); } catch (e) { /* shown */ }
}

// ------------------------------------------------------------------------ 2-D picture
async function drawToy() {
  const step = state.model.toy_steps[+$("toy-step").value];
  $("toy-step-label").textContent = `step ${step}`;
  const r = await api(`/api/toy?step=${step}`);
  const cv = $("toy-canvas"), ctx = cv.getContext("2d"), S = cv.width, n = r.heat.length;
  const [x0, x1, y0, y1] = r.bounds;
  let lo = Infinity, hi = -Infinity;
  for (const row of r.heat) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const prob = lo >= 0 && hi <= 1; if (prob) { lo = 0; hi = 1; }
  const cell = S / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const t = (r.heat[i][j] - lo) / ((hi - lo) || 1);  // white (low) to dark green (high)
    ctx.fillStyle = `rgb(${Math.round(255 - 200 * t)},${Math.round(255 - 120 * t)},${Math.round(255 - 190 * t)})`;
    ctx.fillRect(j * cell, S - (i + 1) * cell, cell + 1, cell + 1);
  }
  const px = (p) => [(p[0] - x0) / (x1 - x0) * S, S - (p[1] - y0) / (y1 - y0) * S];
  for (const [pts, color] of [[r.fake, "rgba(230,119,0,0.55)"], [r.real, "rgba(25,113,194,0.7)"]]) {
    ctx.fillStyle = color;
    for (const p of pts) { const [x, y] = px(p); ctx.fillRect(x - 1.5, y - 1.5, 3, 3); }
  }
  $("toy-legend").textContent = `${r.label}: white ${fmt(lo)} → green ${fmt(hi)}; blue real, orange generated; x ∈ [${fmt(x0)}, ${fmt(x1)}], y ∈ [${fmt(y0)}, ${fmt(y1)}]`;
}

// ------------------------------------------------------------------------ wiring
function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
const redraw = debounce(() => drawGrid().catch(() => {}), 120);
$("psi").addEventListener("input", () => { $("psi-value").textContent = (+$("psi").value).toFixed(2); redraw(); });
for (const id of ["seed", "n", "klass", "per-class"]) $(id).addEventListener("change", redraw);
$("grid-run").addEventListener("click", redraw);
$("interp-run").addEventListener("click", () => runInterp().catch(() => {}));
$("interp-t").addEventListener("input", showFrame);
$("edit-run").addEventListener("click", () => runEdit());
$("mix-run").addEventListener("click", () => runMix(false).catch(() => {}));
$("mix-noise").addEventListener("click", () => runMix(true).catch(() => {}));
$("tr-direction").addEventListener("change", loadTests);
$("tr-upload").addEventListener("change", translateUpload);
$("timeline").addEventListener("input", showTimeline);
$("toy-step").addEventListener("input", debounce(() => drawToy().catch(() => {}), 150));

async function start() {
  await pollMetrics();
  try { setupPanels(await loadInfo()); } catch (e) { /* shown */ }
  let kind = state.model.kind;
  setInterval(async () => {
    await pollMetrics();
    try {
      const m = await loadInfo();
      if (m.kind !== kind) { kind = m.kind; setupPanels(m); }  // the first checkpoint arrived
    } catch (e) { /* shown */ }
  }, 3000);
}
start();
