/**
 * The brain overlay's colour bar as numbers: what the colours mean in the map's own unit.
 *
 * The overlay draws |value| from the threshold (faintest colour) to `max` (full colour),
 * orange for positive and blue for negative values; below the threshold nothing is drawn.
 * A bar that only says "− … +" leaves the reader guessing whether orange is t = 3 or
 * t = 30, so the bar carries the symbol and both ends of each half. `overlayMax` is the
 * one place that decides where the colour saturates, so NiiVue, the canvas fallback and
 * the labels cannot disagree.
 */
import type { MapKind } from '../../../protocol/messages.ts';

export interface ColourBar {
  /** The map's symbol: t (t statistic), β (GLM coefficient), w (network weight). */
  symbol: string;
  /** What the symbol means, for the tooltip. */
  meaning: string;
  /** |value| from which voxels are coloured. */
  threshold: number;
  /** |value| at which the colour saturates. */
  max: number;
  /** Whether each half is drawn: a t- or β-map has both signs; a network only those its values take. */
  negative: boolean;
  positive: boolean;
  /** Labels at the bar's ends and middle, formatted. */
  labels: { negativeMax: string; negativeThreshold: string; positiveThreshold: string; positiveMax: string };
}

/** Where the overlay's colour saturates: the map's largest |value|, never at or below the threshold. */
export function overlayMax(maxAbs: number, threshold: number): number {
  return Math.max(maxAbs, threshold * 1.05, 1e-6);
}

/** A value short enough for the bar, with a typographic minus: 120, 5.2, −0.25, 0.0031. */
export function formatBarValue(v: number): string {
  const a = Math.abs(v);
  if (!Number.isFinite(v)) return '–';
  if (a === 0) return '0';
  const text = a >= 100 ? a.toFixed(0) : a >= 1 ? a.toFixed(1) : a.toPrecision(2);
  return v < 0 ? `−${text}` : text;
}

const MEANINGS: Record<MapKind, [string, string]> = {
  'unit-t': ['t', "t statistic of the unit's synchronized map (its own voxelwise GLM, or its regressor's in the joint GLM)"],
  'unit-beta': ['β', "GLM coefficient of the unit's response (BOLD signal units per unit of the response)"],
  network: ['w', "network weight (an atlas region's membership, or a learned network's loading)"],
};

/**
 * The colour bar for a map drawn at `threshold` (in the map's unit).
 * @param kind what is shown
 * @param values the map (non-finite values ignored), for the signs it takes
 * @param maxAbs its largest finite |value|
 */
export function colourBar(kind: MapKind, values: ArrayLike<number>, maxAbs: number, threshold: number): ColourBar {
  const [symbol, meaning] = MEANINGS[kind];
  const max = overlayMax(maxAbs, threshold);
  let negative = true;
  let positive = true;
  if (kind === 'network') {
    negative = false;
    positive = false;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < 0) negative = true;
      else if (v > 0) positive = true;
      if (negative && positive) break;
    }
    if (!negative && !positive) positive = true;
  }
  return {
    symbol,
    meaning,
    threshold,
    max,
    negative,
    positive,
    labels: {
      negativeMax: formatBarValue(-max),
      negativeThreshold: formatBarValue(-threshold),
      positiveThreshold: formatBarValue(threshold),
      positiveMax: formatBarValue(max),
    },
  };
}
