/**
 * report.html: the figures a paper would show, as one static, self-contained page (inline
 * SVG and CSS, no scripts, no fetches), readable from the file system in any browser:
 *  - the coupling matrix (final sliding-window r of every unit with every brain feature),
 *  - per layer, which atlas network its units' own synchronized maps are annotated with
 *    (q ≤ fdr_q; without unit maps, the network each unit couples with best), and the
 *    annotation table,
 *  - linear CKA by layer depth (at the end of the run and over the run),
 *  - timelines of the strongest pairs.
 * Colours: ColorBrewer RdBu for signed values, Okabe–Ito/Tol for categories (svg.ts).
 */
import type { AnalysisContent } from './report.ts';
import { CATEGORICAL, axes, diverging, esc, frame, polyline, px, scale, svg, ticks } from './svg.ts';
import { regressorLayer } from './tables.ts';
import { SOFTWARE_COMMIT, SOFTWARE_VERSION } from './version.ts';

const WIDTH = 1100;
const MAX_HOVER_CELLS = 20_000;

export function htmlReport(c: AnalysisContent): string {
  const { info } = c;
  const lastTr = c.series.trs.length ? c.series.trs[c.series.trs.length - 1] : 0;
  const sections = [
    section('Coupling matrix', couplingMatrix(c), `Sliding-window Pearson r (window ${esc(String(settingOf(c, 'window')))} TRs) between each unit's HRF-convolved response and each brain feature at the last TR (${lastTr}). Dots: significant at that TR (circular-shift nulls, BH q ≤ ${esc(String(settingOf(c, 'fdrQ')))}). Grey: undefined.`),
    section(
      'Which networks each layer maps to',
      layerSummary(c) + annotationTable(c),
      c.unitAnnotations.length > 0
        ? `Bars: for each layer, the share of its units whose own synchronized map (t-map of the unit's GLM) is annotated with each atlas network at BH q ≤ ${esc(String(c.fdrQ))}; grey: no network at that level. Table: every unit's map with the template it matches best (spatial correlation), its null p-value and BH q across the units.`
        : 'Bars: for each layer, the share of its units whose strongest coupling (largest |r| at the last TR) is with each atlas network (no unit maps in this run). Table: each GLM regressor\'s map (t-map) annotated with the template it matches best (spatial correlation), with its null p-value and BH q.',
    ),
    section('Layer similarity (CKA) by depth', ckaByDepth(c) + ckaOverTime(c), 'Linear CKA between each layer\'s unit responses and the brain features, over the TRs seen so far; layers in tap order (shallow to deep).'),
    section('Timelines of the strongest pairs', timelines(c), 'For the most consistently significant pair of each brain feature (when none was significant, the largest |r| at the last TR, marked "not significant"): the sliding-window r over the run, and below it the two series it correlates, each z-scored over the run.'),
  ];
  const summary = [
    ['session', info.name],
    ['TRs', `${c.series.trs.length} × ${info.tr} s`],
    ['voxels in mask', String(info.maskIndices.length)],
    ['model', `${info.model.id} (${info.model.backend})`],
    // info.units also lists the GLM regressors (coupled like units): count the CNN's own.
    ['units', `${info.layers.reduce((n, l) => n + l.channels, 0)} CNN units in ${info.layers.length} layers; GLM regressors: ${info.regressors.join(', ')}`],
    ['brain features', info.features.join(', ')],
    ['coupled pairs', String(c.pairs.length)],
    ['software', `syncact ${SOFTWARE_VERSION}${SOFTWARE_COMMIT ? ` (commit ${SOFTWARE_COMMIT.slice(0, 12)})` : ''}`],
  ];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>syncact report: ${esc(info.name)}</title>
<style>body{font-family:sans-serif;margin:24px auto;max-width:${WIDTH + 40}px;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
p.caption{font-size:13px;color:#444;max-width:900px}table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}th{background:#f4f4f4}
figure{margin:0}svg{display:block;margin:8px 0}</style></head>
<body><h1>syncact report: ${esc(info.name)}</h1>
<table>${summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
${sections.join('\n')}
<p class="caption">Parameters and the software version: report.json in this folder; maps and tables: the func/ folder.</p>
</body></html>
`;
}

/**
 * Layer names short enough for axis labels: ONNX taps share long prefixes and suffixes
 * ("/features/features.1/Relu_output_0", "/features/features.4/Relu_output_0" → "1", "4"),
 * so the part common to all is cut (at a "/", "." or "_" boundary), then each name is
 * cut to `max` characters. The full names stay in the figures' hover titles.
 */
export function shortLayerNames(names: string[], max = 14): string[] {
  let cut = names.map((n) => n);
  if (names.length > 1) {
    const prefix = commonAffix(names, false);
    const suffix = commonAffix(names.map((n) => n.slice(prefix)), true);
    cut = names.map((n) => n.slice(prefix, n.length - suffix));
    if (cut.some((n) => n === '')) cut = names.map((n) => n);
  }
  return cut.map((n) => (n.length > max ? n.slice(0, max - 1) + '…' : n));
}

/** Length of the longest common prefix (or suffix) of all names that ends (or starts) at a separator. */
function commonAffix(names: string[], suffix: boolean): number {
  const strs = suffix ? names.map((n) => [...n].reverse().join('')) : names;
  let k = 0;
  while (k < strs[0].length && strs.every((n) => n[k] === strs[0][k])) k++;
  // Back off to just after a separator, so "relu1" and "relu2" do not become "1" and "2"
  // unless the names are separated there ("/relu/1", "/relu/2").
  while (k > 0 && !/[/._]/.test(strs[0][k - 1])) k--;
  return k;
}

function settingOf(c: AnalysisContent, key: string): unknown {
  const p = c.report.parameters as { engine?: Record<string, unknown> } | undefined;
  return p?.engine?.[key] ?? '?';
}

function section(title: string, body: string, caption: string): string {
  const id = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `<h2 id="${id}">${esc(title)}</h2><figure>${body}<p class="caption">${caption}</p></figure>`;
}

function unitName(c: AnalysisContent, i: number): string {
  const u = c.info.units[i];
  return u.layer === 'pca' || u.layer === 'regressor' ? c.info.regressors[u.channel] : `${u.layer}:${u.channel}`;
}

/** Learned networks are the last `networks` features; the rest are the atlas's regions (the annotation templates). */
function atlasFeatureCount(c: AnalysisContent): number {
  return c.info.features.length - c.networks;
}

function couplingMatrix(c: AnalysisContent): string {
  const { info, final } = c;
  const U = info.units.length;
  const F = info.features.length;
  const left = 130;
  const top = 40;
  const cellW = Math.max(1, Math.min(14, (WIDTH - left - 20) / Math.max(1, U)));
  const cellH = Math.max(8, Math.min(18, 360 / Math.max(1, F)));
  // At least wide enough for the axis caption and the colour bar with its label.
  const width = Math.max(Math.ceil(left + cellW * U + 20), left + 520);
  const height = Math.ceil(top + cellH * F + 110);
  const parts: string[] = [];
  // Hover labels cost ~60 bytes a cell: kept while the page stays small (a ResNet's
  // thousands of units would otherwise make a report of many megabytes).
  const hover = U * F <= MAX_HOVER_CELLS;
  for (let f = 0; f < F; f++) {
    parts.push(`<text x="${left - 6}" y="${px(top + (f + 0.5) * cellH)}" text-anchor="end" dominant-baseline="middle" font-size="11">${esc(info.features[f])}</text>`);
    for (let i = 0; i < U; i++) {
      const j = i * F + f;
      const x = left + i * cellW;
      const y = top + f * cellH;
      const tip = hover ? `<title>${esc(unitName(c, i))} · ${esc(info.features[f])}: r = ${fmt(final.coupling[j])}</title>` : '';
      parts.push(`<rect x="${px(x)}" y="${px(y)}" width="${px(cellW)}" height="${px(cellH)}" fill="${diverging(final.coupling[j])}">${tip}</rect>`);
      if (final.significant[j]) parts.push(`<circle cx="${px(x + cellW / 2)}" cy="${px(y + cellH / 2)}" r="${px(Math.max(0.8, Math.min(cellW, cellH) / 4))}" fill="#000"/>`);
    }
  }
  // Layer brackets under the matrix.
  const short = new Map(info.layers.map((l, i) => [l.name, shortLayerNames(info.layers.map((x) => x.name), 10)[i]]));
  let start = 0;
  const bottom = top + cellH * F;
  for (let i = 1; i <= U; i++) {
    if (i === U || info.units[i].layer !== info.units[start].layer) {
      const x0 = left + start * cellW;
      const x1 = left + i * cellW;
      parts.push(`<line x1="${px(x0)}" y1="${px(bottom + 4)}" x2="${px(x1 - 1)}" y2="${px(bottom + 4)}" stroke="#333"/>`);
      parts.push(`<line x1="${px(x0)}" y1="${px(top)}" x2="${px(x0)}" y2="${px(bottom + 8)}" stroke="#fff" stroke-width="1"/>`);
      parts.push(`<text x="${px((x0 + x1) / 2)}" y="${px(bottom + 18)}" text-anchor="middle" font-size="11">${esc(short.get(info.units[start].layer) ?? info.units[start].layer)}<title>${esc(info.units[start].layer)}</title></text>`);
      start = i;
    }
  }
  parts.push(`<text x="${px(left + (cellW * U) / 2)}" y="${px(bottom + 36)}" text-anchor="middle" font-size="12">CNN units, grouped by layer (tap order; components last)</text>`);
  parts.push(`<text x="${left}" y="${top - 14}" font-size="12">brain features (rows) × units (columns)</text>`);
  // Colour bar: r from −1 to 1.
  const barX = left;
  const barY = bottom + 52;
  const barW = 240;
  for (let k = 0; k < 48; k++) parts.push(`<rect x="${px(barX + (k * barW) / 48)}" y="${px(barY)}" width="${px(barW / 48 + 0.5)}" height="10" fill="${diverging(-1 + (2 * (k + 0.5)) / 48)}"/>`);
  for (const v of [-1, -0.5, 0, 0.5, 1]) parts.push(`<text x="${px(barX + ((v + 1) / 2) * barW)}" y="${px(barY + 24)}" text-anchor="middle" font-size="10">${v}</text>`);
  parts.push(`<text x="${px(barX + barW + 10)}" y="${px(barY + 9)}" font-size="11">Pearson r (unitless)</text>`);
  return svg({ width, height }, parts.join(''), 'coupling matrix: sliding-window r, features by units');
}

/** Per layer (CNN layers only), the share of units whose largest-|r| atlas network is each one. */
function layerSummary(c: AnalysisContent): string {
  const { info, final } = c;
  const F = info.features.length;
  const A = atlasFeatureCount(c);
  if (A <= 0 || (A === 1 && info.features[0] === 'global')) return '<p>No atlas: the units were coupled with the global signal and the learned networks only, and nothing was annotated.</p>';
  const layers = info.layers.map((l) => l.name);
  // Category A (the last) is "no network at q ≤ fdr_q", used only with unit annotations.
  const byAnnotation = c.unitAnnotations.length > 0;
  const categories = byAnnotation ? A + 1 : A;
  const counts = layers.map(() => new Array<number>(categories).fill(0));
  const totals = layers.map(() => 0);
  const annotationOf = new Map(c.unitAnnotations.map((a) => [a.unit, a]));
  info.units.forEach((u, i) => {
    const l = layers.indexOf(u.layer);
    if (l < 0) return;
    if (byAnnotation) {
      const a = annotationOf.get(i);
      if (!a) return;
      const k = a.q <= c.fdrQ ? info.features.indexOf(a.label) : -1;
      counts[l][k >= 0 && k < A ? k : A]++;
      totals[l]++;
      return;
    }
    let best = -1;
    let bestAbs = -1;
    for (let f = 0; f < A; f++) {
      const a = Math.abs(final.coupling[i * F + f]);
      if (Number.isFinite(a) && a > bestAbs) {
        bestAbs = a;
        best = f;
      }
    }
    if (best >= 0) {
      counts[l][best]++;
      totals[l]++;
    }
  });
  const rowH = 24;
  const f = frame(WIDTH - 40, 60 + rowH * layers.length + 40 + Math.ceil(categories / 5) * 18, { left: 110, top: 16, right: 24, bottom: 50 + Math.ceil(categories / 5) * 18 });
  const x = scale(0, 1, f.left, f.right);
  const parts: string[] = [];
  const yOf = (l: number) => f.top + l * rowH + 4;
  const axisBottom = f.top + rowH * layers.length + 8;
  const g: typeof f = { ...f, bottom: axisBottom };
  parts.push(axes(g, { scale: x, ticks: ticks(0, 1, 5).map((v) => ({ value: v, label: String(v) })), label: '' }, { scale: () => NaN, ticks: [], label: '' }));
  const what = byAnnotation ? `whose own map is annotated with the network at q ≤ ${c.fdrQ}` : 'whose strongest coupling is with the network';
  parts.push(`<text x="${px((f.left + f.right) / 2)}" y="${px(axisBottom + 32)}" text-anchor="middle" font-size="12">share of the layer's units ${esc(what)} (fraction of units)</text>`);
  const colour = (k: number) => (k === A ? '#bbbbbb' : CATEGORICAL[k % CATEGORICAL.length]);
  const categoryName = (k: number) => (k === A ? `no network at q ≤ ${c.fdrQ}` : info.features[k]);
  const short = shortLayerNames(layers);
  layers.forEach((name, l) => {
    parts.push(`<text x="${f.left - 8}" y="${px(yOf(l) + (rowH - 6) / 2)}" text-anchor="end" dominant-baseline="middle" font-size="11">${esc(short[l])} (${totals[l]})<title>${esc(name)}</title></text>`);
    let acc = 0;
    for (let k = 0; k < categories; k++) {
      if (!counts[l][k]) continue;
      const share = counts[l][k] / totals[l];
      parts.push(`<rect x="${px(x(acc))}" y="${px(yOf(l))}" width="${px(x(acc + share) - x(acc))}" height="${rowH - 6}" fill="${colour(k)}" stroke="#fff" stroke-width="0.5"><title>${esc(name)} → ${esc(categoryName(k))}: ${counts[l][k]} of ${totals[l]} units</title></rect>`);
      acc += share;
    }
  });
  // Legend.
  const legendY = axisBottom + 46;
  for (let k = 0; k < categories; k++) {
    const lx = f.left + (k % 5) * 170;
    const ly = legendY + Math.floor(k / 5) * 18;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${colour(k)}"/><text x="${lx + 17}" y="${ly + 10}" font-size="11">${esc(categoryName(k))}</text>`);
  }
  return svg({ width: f.width, height: legendY + Math.ceil(categories / 5) * 18 + 8 }, parts.join(''), 'annotation summary per layer');
}

function annotationTable(c: AnalysisContent): string {
  const units = c.unitAnnotations.length > 0;
  const list = units ? c.unitAnnotations : c.annotations;
  if (list.length === 0) return '<p>No annotation (the session has no atlas).</p>';
  const rows = list
    .map((a) => `<tr><td>${esc(regressorLayer(c.info, a.unit))}</td><td>${esc(unitName(c, a.unit))}</td><td>${esc(a.label)}</td><td>${a.sign > 0 ? '+' : '−'}</td><td>${fmt(a.score)}</td><td>${fmt(a.p)}</td><td>${fmt(a.q)}</td></tr>`)
    .join('');
  return `<table><tr><th>layer</th><th>${units ? 'unit' : 'regressor'}</th><th>best template</th><th>sign</th><th>score (spatial r)</th><th>p</th><th>q (BH)</th></tr>${rows}</table>`;
}

function ckaByDepth(c: AnalysisContent): string {
  const layers = c.info.layers.map((l) => l.name);
  const values = layers.map((_, l) => c.final.cka[l]);
  const hi = Math.max(0.1, ...values.filter(Number.isFinite));
  const f = frame(520, 280);
  const x = scale(0, Math.max(1, layers.length - 1), f.left + 20, f.right - 20);
  const yMax = ticks(0, hi, 5).at(-1) as number;
  const y = scale(0, Math.max(yMax, hi), f.bottom, f.top);
  const body = [
    axes(f, { scale: x, ticks: shortLayerNames(layers, 12).map((n, i) => ({ value: i, label: n })), label: 'layer (tap order, shallow → deep)' }, { scale: y, ticks: ticks(0, Math.max(yMax, hi), 5), label: 'linear CKA (0–1)' }),
    polyline(layers.map((_, i) => x(i)), values.map((v) => y(v)), '#0072B2', 2),
    ...values.map((v, i) => (Number.isFinite(v) ? `<circle cx="${px(x(i))}" cy="${px(y(v))}" r="4" fill="#0072B2"><title>${esc(layers[i])}: CKA ${fmt(v)}</title></circle>` : '')),
  ];
  return svg(f, body.join(''), 'CKA by layer depth at the end of the run');
}

function ckaOverTime(c: AnalysisContent): string {
  const layers = c.info.layers.map((l) => l.name);
  const short = shortLayerNames(layers, 20);
  const times = c.series.trs.map((k) => k * c.info.tr);
  let hi = 0.1;
  for (const v of c.series.cka) for (const x of v) if (Number.isFinite(x) && x > hi) hi = x;
  const f = frame(WIDTH - 40, 300, { left: 56, top: 16, right: 180, bottom: 44 });
  const tMax = Math.max(c.info.tr, times.at(-1) ?? 0);
  const x = scale(0, tMax, f.left, f.right);
  const yTop = ticks(0, hi, 5).at(-1) as number;
  const y = scale(0, Math.max(yTop, hi), f.bottom, f.top);
  const body = [axes(f, { scale: x, ticks: ticks(0, tMax, 8).map((v) => ({ value: v, label: String(v) })), label: 'time from run start (s)' }, { scale: y, ticks: ticks(0, Math.max(yTop, hi), 5), label: 'linear CKA (0–1)' })];
  layers.forEach((name, l) => {
    const color = CATEGORICAL[l % CATEGORICAL.length];
    body.push(polyline(times.map(x), c.series.cka.map((v) => y(v[l])), color));
    body.push(`<rect x="${px(f.right + 12)}" y="${px(f.top + l * 18)}" width="12" height="12" fill="${color}"/><text x="${px(f.right + 30)}" y="${px(f.top + l * 18 + 10)}" font-size="11">${esc(short[l])}<title>${esc(name)}</title></text>`);
  });
  return svg(f, body.join(''), 'CKA per layer over the run');
}

/**
 * The pairs to draw: the strongest coupled pair of each brain feature first (strongest
 * first), so that four panels show four networks rather than four near-copies of one
 * pair; then the next strongest. Without coupled pairs, the largest |r| at the last TR.
 */
export function timelinePairs(c: Pick<AnalysisContent, 'pairs' | 'final' | 'info'>, count = 4): { index: number; significant: boolean; fraction: number }[] {
  const F = c.info.features.length;
  let ranked: { index: number; significant: boolean; fraction: number }[] = c.pairs.map((p) => ({ index: p.index, significant: true, fraction: p.fraction }));
  if (ranked.length === 0) {
    const order = Array.from(c.final.coupling.keys()).filter((j) => Number.isFinite(c.final.coupling[j]));
    order.sort((a, b) => Math.abs(c.final.coupling[b]) - Math.abs(c.final.coupling[a]) || a - b);
    ranked = order.map((j) => ({ index: j, significant: false, fraction: NaN }));
  }
  const picked: typeof ranked = [];
  const features = new Set<number>();
  for (const p of ranked) {
    if (picked.length >= count) break;
    if (!features.has(p.index % F)) {
      features.add(p.index % F);
      picked.push(p);
    }
  }
  for (const p of ranked) {
    if (picked.length >= count) break;
    if (!picked.includes(p)) picked.push(p);
  }
  return picked;
}

function timelines(c: AnalysisContent): string {
  const F = c.info.features.length;
  const picked = timelinePairs(c);
  if (picked.length === 0) return '<p>No pair has a defined correlation yet (the run is shorter than the window).</p>';
  const times = c.series.trs.map((k) => k * c.info.tr);
  const tMax = Math.max(c.info.tr, times.at(-1) ?? 0);
  return picked
    .map(({ index, significant, fraction }) => {
      const unit = Math.floor(index / F);
      const feature = index % F;
      const title = `${unitName(c, unit)} · ${c.info.features[feature]} (${significant ? `significant in ${Math.round(fraction * 100)}% of scored TRs` : 'not significant'})`;
      const f = frame(WIDTH - 40, 180, { left: 56, top: 24, right: 16, bottom: 40 });
      const x = scale(0, tMax, f.left, f.right);
      const y = scale(-1, 1, f.bottom, f.top);
      const top = [
        `<text x="${f.left}" y="14" font-size="12" font-weight="bold">${esc(title)}</text>`,
        axes(f, { scale: x, ticks: ticks(0, tMax, 8).map((v) => ({ value: v, label: String(v) })), label: 'time from run start (s)' }, { scale: y, ticks: [-1, -0.5, 0, 0.5, 1], label: 'sliding r' }),
        `<line x1="${f.left}" y1="${px(y(0))}" x2="${f.right}" y2="${px(y(0))}" stroke="#999" stroke-dasharray="3 3"/>`,
        polyline(times.map(x), c.series.coupling.map((v) => y(v[index])), '#D55E00', 1.8),
      ];
      // The two series themselves, z-scored over the run, so the r above can be read.
      const u = zscore(c.series.unitResponses.map((v) => v[unit]));
      const b = zscore(c.series.features.map((v) => v[feature]));
      const lim = Math.max(2, ...u.filter(Number.isFinite).map(Math.abs), ...b.filter(Number.isFinite).map(Math.abs));
      const g = frame(WIDTH - 40, 184, { left: 56, top: 22, right: 16, bottom: 40 });
      const gx = scale(0, tMax, g.left, g.right);
      const gy = scale(-lim, lim, g.bottom, g.top);
      const bottom = [
        axes(g, { scale: gx, ticks: ticks(0, tMax, 8).map((v) => ({ value: v, label: String(v) })), label: 'time from run start (s)' }, { scale: gy, ticks: ticks(-lim, lim, 4), label: 'z-score' }),
        polyline(times.map(gx), u.map(gy), '#0072B2', 1.4),
        polyline(times.map(gx), b.map(gy), '#E69F00', 1.4),
        `<rect x="${g.right - 330}" y="6" width="12" height="3" fill="#0072B2"/><text x="${g.right - 314}" y="11" font-size="11">unit response (HRF-convolved)</text>`,
        `<rect x="${g.right - 140}" y="6" width="12" height="3" fill="#E69F00"/><text x="${g.right - 124}" y="11" font-size="11">brain feature (BOLD)</text>`,
      ];
      return svg(f, top.join(''), title) + svg(g, bottom.join(''), `${title}: the two series`);
    })
    .join('');
}

/** z-score over the finite values (population SD); NaN stays NaN, a constant series gives 0. */
function zscore(xs: number[]): number[] {
  const ok = xs.filter(Number.isFinite);
  const mean = ok.reduce((a, v) => a + v, 0) / Math.max(1, ok.length);
  const sd = Math.sqrt(ok.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, ok.length));
  return xs.map((v) => (Number.isFinite(v) ? (sd > 0 ? (v - mean) / sd : 0) : NaN));
}

function fmt(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : 'n/a';
}
