/**
 * The comparison folder (`syncact compare --out DIR`), written atomically like an analysis:
 *   comparison.json   every parameter, the software version, the per-model scores and the correlations
 *   models.tsv        per model: accuracy, best layer, best_layer_cka, significant_map_fraction,
 *                     coupled_unit_fraction, CKA of every layer
 *   correlation.tsv   per score and statistic: n, estimate, 95% bootstrap interval
 *   comparison.svg    brain similarity against accuracy, one labelled point per model
 *   comparison.html   the plot and both tables, self-contained
 * The same inputs and parameters write the same bytes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonNumbers, writeFolderAtomically } from './atomicFolder.ts';
import type { ComparisonResult } from './compare.ts';
import { CATEGORICAL, axes, esc, frame, px, scale, svg, ticks } from './svg.ts';
import { num } from './tables.ts';

export const COMPARISON_FILES = {
  json: 'comparison.json',
  models: 'models.tsv',
  correlation: 'correlation.tsv',
  svg: 'comparison.svg',
  html: 'comparison.html',
} as const;

export function modelsTable(r: ComparisonResult): string {
  const rows = [['model', 'model_id', 'accuracy', 'best_layer', 'best_layer_cka', 'significant_map_fraction', 'coupled_unit_fraction', 'units', 'mapped_units', 'regressors', 'trs', 'layer_cka'].join('\t')];
  for (const m of r.models) {
    rows.push(
      [m.name, m.modelId, m.accuracy === null ? 'n/a' : num(m.accuracy), m.bestLayer ?? 'n/a', num(m.bestLayerCka), num(m.significantMapFraction), num(m.coupledUnitFraction), m.units, m.mappedUnits, m.regressors, m.trs, m.layers.map((l, i) => `${l}=${num(m.cka[i])}`).join(',')].join('\t'),
    );
  }
  return rows.join('\n') + '\n';
}

export function correlationTable(r: ComparisonResult): string {
  const rows = ['score\tstatistic\tn\testimate\tci_low\tci_high\tconfidence\tbootstrap_valid\tbootstrap_draws\tseed'];
  for (const c of r.correlations) rows.push([c.score, c.statistic, c.n, num(c.estimate), num(c.low), num(c.high), 0.95, c.valid, c.draws, String(r.parameters.seed)].join('\t'));
  return rows.join('\n') + '\n';
}

/** Scatter of best-layer CKA (x) against ImageNet top-1 accuracy (y, %), one labelled point per model with an accuracy. */
export function comparisonSvg(r: ComparisonResult): string {
  const pts = r.models.filter((m) => m.accuracy !== null && Number.isFinite(m.bestLayerCka));
  const f = frame(640, 420, { left: 64, top: 40, right: 24, bottom: 50 });
  const xs = pts.map((m) => m.bestLayerCka);
  const ys = pts.map((m) => (m.accuracy as number) * 100);
  const pad = (lo: number, hi: number, floor: number, ceil: number) => {
    const span = Math.max(hi - lo, (ceil - floor) * 0.05);
    return [Math.max(floor, lo - span * 0.15), Math.min(ceil, hi + span * 0.15)];
  };
  const [x0, x1] = xs.length ? pad(Math.min(...xs), Math.max(...xs), 0, 1) : [0, 1];
  const [y0, y1] = ys.length ? pad(Math.min(...ys), Math.max(...ys), 0, 100) : [0, 100];
  const x = scale(x0, x1, f.left, f.right);
  const y = scale(y0, y1, f.bottom, f.top);
  const pear = r.correlations.find((c) => c.score === 'best_layer_cka' && c.statistic === 'pearson');
  const spear = r.correlations.find((c) => c.score === 'best_layer_cka' && c.statistic === 'spearman');
  const ci = (c: typeof pear) => (c && Number.isFinite(c.estimate) ? `${num(Number(c.estimate.toFixed(3)))} [${num(Number(c.low.toFixed(3)))}, ${num(Number(c.high.toFixed(3)))}]` : 'n/a (needs 3 models with accuracy)');
  const body = [
    `<text x="${f.left}" y="16" font-size="13" font-weight="bold">Brain similarity vs ImageNet accuracy (${pts.length} models)</text>`,
    `<text x="${f.left}" y="32" font-size="11">Pearson r ${esc(ci(pear))}, Spearman rho ${esc(ci(spear))}; 95% bootstrap intervals</text>`,
    axes(f, { scale: x, ticks: ticks(x0, x1, 6).map((v) => ({ value: v, label: String(v) })), label: 'brain similarity: best-layer linear CKA (0–1)' }, { scale: y, ticks: ticks(y0, y1, 6), label: 'ImageNet top-1 accuracy (%)' }),
    ...pts.map(
      (m, i) =>
        `<circle cx="${px(x(m.bestLayerCka))}" cy="${px(y((m.accuracy as number) * 100))}" r="5" fill="${CATEGORICAL[i % CATEGORICAL.length]}" stroke="#222"><title>${esc(m.name)}: CKA ${num(m.bestLayerCka)} (${esc(m.bestLayer ?? '')}), accuracy ${num((m.accuracy as number) * 100)}%</title></circle>` +
        `<text x="${px(x(m.bestLayerCka) + 8)}" y="${px(y((m.accuracy as number) * 100) - 6)}" font-size="11">${esc(m.name)}</text>`,
    ),
  ];
  return svg(f, body.join(''), 'brain similarity against ImageNet accuracy');
}

export function comparisonHtml(r: ComparisonResult): string {
  const table = (text: string) => {
    const [head, ...rows] = text.trim().split('\n').map((l) => l.split('\t'));
    return `<div style="overflow-x:auto"><table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table></div>`;
  };
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>syncact model comparison</title>
<style>body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}th{background:#f4f4f4}p{font-size:13px;color:#444}</style></head>
<body><h1>Model comparison</h1>
${comparisonSvg(r)}
<p>Brain similarity is the best-layer linear CKA between a layer's unit responses and the brain features at the end of the run. significant_map_fraction: share of the units with their own synchronized map (each unit's GLM t-map) that matches an atlas network (annotation q ≤ FDR level, BH across the units). coupled_unit_fraction: share of units coupled with a brain feature in at least half of the scored TRs.</p>
<h2>Models</h2>${table(modelsTable(r))}
<h2>Correlation with accuracy</h2>${table(correlationTable(r))}
<p>n/a: fewer than 3 models with an accuracy, or a score that is the same for every model (no correlation is defined).</p>
<p>Parameters: comparison.json. syncact ${esc(String((r.parameters.software as { version: string }).version))}.</p>
</body></html>
`;
}

/** Writes the comparison folder; returns the files written (absolute paths). */
export async function writeComparison(outDir: string, r: ComparisonResult): Promise<string[]> {
  return writeFolderAtomically(outDir, COMPARISON_FILES.json, 'comparison', async (partial) => {
    const files: [string, string][] = [
      [COMPARISON_FILES.models, modelsTable(r)],
      [COMPARISON_FILES.correlation, correlationTable(r)],
      [COMPARISON_FILES.svg, comparisonSvg(r) + '\n'],
      [COMPARISON_FILES.html, comparisonHtml(r)],
      [COMPARISON_FILES.json, JSON.stringify({ syncact: 'comparison', version: 1, parameters: r.parameters, models: r.models.map(({ cacheHit: _, ...m }) => m), correlations: r.correlations }, jsonNumbers, 2) + '\n'],
    ];
    for (const [name, text] of files) await writeFile(join(partial, name), text);
    return files.map(([n]) => n);
  });
}
