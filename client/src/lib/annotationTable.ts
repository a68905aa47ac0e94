/**
 * The annotation table's rows as shown: joined with the unit's name and layer, filtered
 * by layer, sorted by a column (non-finite values always last, whatever the direction).
 * With unit maps there is a row per CNN unit (141 on the demo, hundreds on a real model),
 * so "layer" sorts in the model's order (the order of session.units, input to output, the
 * regressors last), not alphabetically, and channel by channel within a layer.
 */
import type { AnnotationRow } from '../../../protocol/state.ts';
import { unitName, type SessionView } from './store.ts';

export type SortKey = 'unit' | 'layer' | 'label' | 'score' | 'p' | 'q';

export interface TableRow extends AnnotationRow {
  name: string;
  layer: string;
}

export function annotationRows(
  session: Pick<SessionView, 'units' | 'regressors'>,
  rows: AnnotationRow[],
  options: { layer: string | null; sort: SortKey; descending: boolean },
): TableRow[] {
  const out: TableRow[] = rows
    .map((r) => ({ ...r, name: unitName(session, r.unit), layer: session.units[r.unit]?.layer ?? '?' }))
    .filter((r) => options.layer === null || r.layer === options.layer);
  // A layer's place in the model: the index of its first unit (units are listed layer by layer).
  const layerAt = new Map<string, number>();
  session.units.forEach((u, i) => {
    if (!layerAt.has(u.layer)) layerAt.set(u.layer, i);
  });
  const place = (layer: string) => layerAt.get(layer) ?? Infinity;
  const dir = options.descending ? -1 : 1;
  const key = options.sort;
  out.sort((a, b) => {
    if (key === 'layer') return a.layer === b.layer ? a.unit - b.unit : dir * (place(a.layer) - place(b.layer));
    if (key === 'label') return dir * a[key].localeCompare(b[key]);
    if (key === 'unit') return dir * (a.unit - b.unit);
    const x = a[key];
    const y = b[key];
    const fx = typeof x === 'number' && Number.isFinite(x);
    const fy = typeof y === 'number' && Number.isFinite(y);
    if (!fx || !fy) return fx === fy ? 0 : fx ? -1 : 1;
    return dir * (x - y);
  });
  return out;
}
