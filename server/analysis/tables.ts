/**
 * The TSV tables of an analysis folder, as text. Numbers are written with 6 significant
 * digits (float32 estimates carry no more) and undefined values as "n/a", BIDS's missing
 * value; the same run therefore always gives the same bytes.
 */
import type { AnnotationRow, SessionInfo, TrState } from '../../protocol/state.ts';
import type { AnalysisSeries, CoupledPair } from './analyze.ts';

export function num(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(6))) : 'n/a';
}

function unitLabel(info: SessionInfo, i: number): { name: string; layer: string; channel: number } {
  const u = info.units[i];
  const name = u.layer === 'pca' || u.layer === 'regressor' ? info.regressors[u.channel] : `${u.layer}:${u.channel}`;
  return { name, layer: u.layer, channel: u.channel };
}

/**
 * The layer a GLM regressor's map belongs to: "pca" for components; for a chosen unit
 * (regressor named "layer:channel"), its CNN layer.
 */
export function regressorLayer(info: SessionInfo, u: number): string {
  const unit = info.units[u];
  if (unit.layer !== 'regressor') return unit.layer;
  const name = info.regressors[unit.channel];
  const colon = name.lastIndexOf(':');
  return colon > 0 ? name.slice(0, colon) : unit.layer;
}

function tsv(header: string[], rows: (string | number)[][]): string {
  return [header, ...rows].map((r) => r.join('\t')).join('\n') + '\n';
}

/** Per (unit, feature): final r, p, q, significant at the end, fraction of scored TRs significant. */
export function couplingTable(info: SessionInfo, final: TrState, finalP: Float64Array, fractionSignificant: Float64Array): string {
  const F = info.features.length;
  const rows: (string | number)[][] = [];
  for (let i = 0; i < info.units.length; i++) {
    const u = unitLabel(info, i);
    for (let f = 0; f < F; f++) {
      const j = i * F + f;
      rows.push([u.name, u.layer, u.channel, info.features[f], num(final.coupling[j]), num(finalP[j]), num(final.couplingQ[j]), final.significant[j] ?? 0, num(fractionSignificant[j])]);
    }
  }
  return tsv(['unit', 'layer', 'channel', 'feature', 'r', 'p', 'q', 'significant', 'fraction_significant'], rows);
}

/** Per GLM regressor: its layer ("pca" for components), best template network, sign, score, null p, BH q. */
export function annotationTable(info: SessionInfo, annotations: AnnotationRow[]): string {
  return tsv(
    ['layer', 'unit', 'label', 'sign', 'score', 'p', 'q'],
    annotations.map((a) => {
      const u = unitLabel(info, a.unit);
      return [regressorLayer(info, a.unit), u.name, a.label, a.sign, num(a.score), num(a.p), num(a.q)];
    }),
  );
}

/** The column name of a pair in the coupling time series: "unit@feature". */
export function pairColumn(p: Pick<CoupledPair, 'unit' | 'feature'>): string {
  return `${p.unit}@${p.feature}`;
}

/** Sliding-window r over TRs of the coupled pairs: tr, time (s from the run start), one column per pair. */
export function couplingSeriesTable(series: AnalysisSeries, tr: number, pairs: CoupledPair[]): string {
  return tsv(
    ['tr', 'time', ...pairs.map(pairColumn)],
    series.trs.map((k, t) => [k, num(k * tr), ...pairs.map((p) => num(series.coupling[t][p.index]))]),
  );
}

/** Linear CKA per layer over TRs: tr, time, one column per layer (tap order). */
export function ckaSeriesTable(series: AnalysisSeries, tr: number, layers: string[]): string {
  return tsv(
    ['tr', 'time', ...layers],
    series.trs.map((k, t) => [k, num(k * tr), ...layers.map((_, l) => num(series.cka[t][l]))]),
  );
}
