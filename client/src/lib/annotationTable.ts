/**
 * The annotation table's rows as shown: joined with the unit's name and layer, filtered
 * by layer, sorted by a column (non-finite values always last, whatever the direction).
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
  const dir = options.descending ? -1 : 1;
  const key = options.sort;
  out.sort((a, b) => {
    if (key === 'label' || key === 'layer') return dir * a[key].localeCompare(b[key]);
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
