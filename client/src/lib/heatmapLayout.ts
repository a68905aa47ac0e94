/**
 * Geometry of the coupling heatmap: one column per unit, grouped by layer (a small gap
 * between layers, the layer's name under its group), one row per brain feature. Pure
 * functions, so the hit test that turns a click into a (unit, feature) pair is tested
 * without a browser.
 */

export interface LayerGroup {
  layer: string;
  /** Units of this group, in display order. */
  units: number[];
}

export interface HeatmapLayout {
  groups: LayerGroup[];
  /** Display column of each unit (index = unit). */
  columnOf: Int32Array;
  /** Unit at each display column. */
  unitAt: Int32Array;
  features: number;
  /** Plot area, CSS pixels. */
  left: number;
  top: number;
  cellW: number;
  cellH: number;
  gap: number;
  /** x of each column's left edge. */
  colX: Float64Array;
  width: number;
  height: number;
}

/** Units grouped by layer, in the order layers first appear (contiguous runs merged). */
export function groupByLayer(units: { index: number; layer: string }[]): LayerGroup[] {
  const groups: LayerGroup[] = [];
  const byName = new Map<string, LayerGroup>();
  for (const u of units) {
    let g = byName.get(u.layer);
    if (!g) {
      g = { layer: u.layer, units: [] };
      byName.set(u.layer, g);
      groups.push(g);
    }
    g.units.push(u.index);
  }
  return groups;
}

export function layoutHeatmap(
  units: { index: number; layer: string }[],
  features: number,
  box: { width: number; height: number; left: number; top: number; right: number; bottom: number; gap?: number },
): HeatmapLayout {
  const groups = groupByLayer(units);
  const gap = box.gap ?? 3;
  const n = units.length;
  const plotW = Math.max(1, box.width - box.left - box.right - gap * Math.max(0, groups.length - 1));
  const plotH = Math.max(1, box.height - box.top - box.bottom);
  const cellW = plotW / Math.max(1, n);
  const cellH = plotH / Math.max(1, features);
  const columnOf = new Int32Array(n).fill(-1);
  const unitAt = new Int32Array(n);
  const colX = new Float64Array(n);
  let col = 0;
  groups.forEach((g, gi) => {
    for (const u of g.units) {
      columnOf[u] = col;
      unitAt[col] = u;
      colX[col] = box.left + col * cellW + gi * gap;
      col++;
    }
  });
  return { groups, columnOf, unitAt, features, left: box.left, top: box.top, cellW, cellH, gap, colX, width: box.width, height: box.height };
}

/** The (unit, feature) under a point, or null in gaps and margins. */
export function hitTest(l: HeatmapLayout, x: number, y: number): { unit: number; feature: number } | null {
  const row = Math.floor((y - l.top) / l.cellH);
  if (row < 0 || row >= l.features) return null;
  // columns are sorted by x: binary search the last column starting at or before x
  let lo = 0;
  let hi = l.colX.length - 1;
  if (hi < 0 || x < l.colX[0]) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (l.colX[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  if (x >= l.colX[lo] + l.cellW) return null; // in a gap after the column
  return { unit: l.unitAt[lo], feature: row };
}

/** Centre of a cell (for tests and keyboard focus). */
export function cellCentre(l: HeatmapLayout, unit: number, feature: number): { x: number; y: number } {
  const col = l.columnOf[unit];
  return { x: l.colX[col] + l.cellW / 2, y: l.top + (feature + 0.5) * l.cellH };
}
