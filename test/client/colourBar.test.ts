/**
 * The brain colour bar's numbers: threshold and saturation in the map's unit, the halves
 * a map's signs need, and one saturation value shared with the overlay drawing.
 */
import { describe, expect, it } from 'vitest';
import { colourBar, formatBarValue, overlayMax } from '../../client/src/lib/colourBar.ts';

describe('colourBar', () => {
  it('a t-map: t from ±threshold to ±max|t|, both signs', () => {
    const values = Float32Array.from([0.5, -2, 5.234, NaN, -4.1]);
    const bar = colourBar('unit-t', values, 5.234, 3);
    expect(bar.symbol).toBe('t');
    expect(bar).toMatchObject({ threshold: 3, max: 5.234, negative: true, positive: true });
    expect(bar.labels).toEqual({ negativeMax: '−5.2', negativeThreshold: '−3.0', positiveThreshold: '3.0', positiveMax: '5.2' });
  });

  it('saturates just above the threshold when no voxel reaches it, as the overlay does', () => {
    expect(overlayMax(1.2, 3)).toBeCloseTo(3.15, 12);
    expect(colourBar('unit-t', [1.2], 1.2, 3).max).toBeCloseTo(3.15, 12);
    expect(overlayMax(0, 0)).toBe(1e-6);
  });

  it('a network: its own range, only the halves its signs take, in weight units', () => {
    const region = Float32Array.from([0, 0.2, 0.8, 1]);
    const bar = colourBar('network', region, 1, 0.25);
    expect(bar.symbol).toBe('w');
    expect(bar).toMatchObject({ negative: false, positive: true, max: 1 });
    expect([bar.labels.positiveThreshold, bar.labels.positiveMax]).toEqual(['0.25', '1.0']);
    const atom = colourBar('network', [-0.031, 0.012, NaN], 0.031, 0.0078);
    expect(atom).toMatchObject({ negative: true, positive: true });
    expect(atom.labels.negativeMax).toBe('−0.031');
    expect(colourBar('network', [-3, -1], 3, 0.75)).toMatchObject({ negative: true, positive: false });
    expect(colourBar('network', [0, 0], 0, 0)).toMatchObject({ negative: false, positive: true });
  });

  it('formats short values with a typographic minus', () => {
    expect([120.4, 12.34, 5.25, -0.25, 0.003149, 0, NaN].map(formatBarValue)).toEqual(['120', '12.3', '5.3', '−0.25', '0.0031', '0', '–']);
    expect(colourBar('unit-beta', [1], 1, 0.5).symbol).toBe('β');
  });
});
