/**
 * The dashboard's pure drawing helpers: colour maps, heatmap geometry and hit test,
 * slices in display orientation, and the in-memory NIfTI that NiiVue loads (read back
 * with nifti-reader-js, the reader the server uses).
 */
import { describe, expect, it } from 'vitest';
import * as nifti from 'nifti-reader-js';
import { diverging, interpolate, makeLut, viridis, VIRIDIS_ANCHORS } from '../../client/src/lib/colormap.ts';
import { cellCentre, groupByLayer, hitTest, layoutHeatmap } from '../../client/src/lib/heatmapLayout.ts';
import { displayRange, sliceThrough, voxelToMm } from '../../client/src/lib/volume.ts';
import { niftiFloat32 } from '../../client/src/lib/nifti.ts';
import { fdrThreshold, TrHistory } from '../../client/src/lib/history.ts';

describe('colour maps', () => {
  it('viridis hits its anchors, is monotone in lightness, and maps NaN to null', () => {
    expect(viridis(0)).toEqual([0x44, 0x01, 0x54]);
    expect(viridis(1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(viridis(0.5)).toEqual(VIRIDIS_ANCHORS[4]);
    expect(viridis(-3)).toEqual(viridis(0));
    expect(viridis(NaN)).toBeNull();
    const luminance = (c: number[]) => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    const ls = Array.from({ length: 65 }, (_, i) => luminance(viridis(i / 64)!));
    for (let i = 1; i < ls.length; i++) expect(ls[i]).toBeGreaterThan(ls[i - 1]);
  });

  it('the diverging map is blue below 0, orange above, light in the middle, symmetric in lightness', () => {
    const neg = diverging(-0.8)!;
    const pos = diverging(0.8)!;
    expect(neg[2]).toBeGreaterThan(neg[0]); // blue
    expect(pos[0]).toBeGreaterThan(pos[2]); // orange
    expect(Math.min(...diverging(0)!)).toBeGreaterThan(240);
    const sum = (c: number[]) => c[0] + c[1] + c[2];
    expect(Math.abs(sum(diverging(-1)!) - sum(diverging(1)!))).toBeLessThan(120);
  });

  it('the lookup table samples the map at i/255', () => {
    const lut = makeLut(VIRIDIS_ANCHORS);
    expect(Array.from(lut.subarray(0, 4))).toEqual([...viridis(0)!, 255]);
    expect(Array.from(lut.subarray(128 * 4, 128 * 4 + 3))).toEqual(interpolate(VIRIDIS_ANCHORS, 128 / 255));
  });
});

describe('heatmap layout', () => {
  const units = [
    { index: 0, layer: 's1' },
    { index: 1, layer: 's1' },
    { index: 2, layer: 'c1' },
    { index: 3, layer: 'c1' },
    { index: 4, layer: 'c1' },
    { index: 5, layer: 'pca' },
  ];
  const box = { width: 200, height: 120, left: 20, top: 10, right: 10, bottom: 30, gap: 4 };

  it('groups units by layer and puts a gap between groups', () => {
    expect(groupByLayer(units).map((g) => [g.layer, g.units])).toEqual([
      ['s1', [0, 1]],
      ['c1', [2, 3, 4]],
      ['pca', [5]],
    ]);
    const l = layoutHeatmap(units, 4, box);
    expect(l.cellW).toBeCloseTo((200 - 20 - 10 - 2 * 4) / 6, 12);
    expect(l.colX[2] - l.colX[1]).toBeCloseTo(l.cellW + 4, 12);
    expect(l.colX[3] - l.colX[2]).toBeCloseTo(l.cellW, 12);
  });

  it('the hit test finds every cell from its centre and nothing in gaps or margins', () => {
    const l = layoutHeatmap(units, 4, box);
    for (const u of units) {
      for (let f = 0; f < 4; f++) {
        const { x, y } = cellCentre(l, u.index, f);
        expect(hitTest(l, x, y)).toEqual({ unit: u.index, feature: f });
      }
    }
    expect(hitTest(l, l.colX[1] + l.cellW + 1, 20)).toBeNull(); // gap between s1 and c1
    expect(hitTest(l, 5, 20)).toBeNull();
    expect(hitTest(l, 100, 119)).toBeNull();
    expect(hitTest(l, 199, 20)).toBeNull();
  });
});

describe('volume geometry', () => {
  // 4×3×2 grid, value = i + 10 j + 100 k; x flipped like MNI templates
  const dims = [4, 3, 2] as const;
  const data = Float32Array.from({ length: 24 }, (_, g) => (g % 4) + 10 * (Math.floor(g / 4) % 3) + 100 * Math.floor(g / 12));
  const affine = [
    [-2, 0, 0, 10],
    [0, 2, 0, -4],
    [0, 0, 3, -2],
    [0, 0, 0, 1],
  ];

  it('voxel to mm through the affine', () => {
    expect(voxelToMm(affine, [1, 2, 1])).toEqual([8, 0, 1]);
  });

  it('an axial slice shows mm x growing to the right and y upwards', () => {
    const s = sliceThrough(data, dims, affine, 'z', [0, 0, 1]);
    expect([s.width, s.height]).toEqual([4, 3]);
    // top-left: largest y (j = 2) and smallest mm x (i = 3, since x is flipped)
    expect(s.values[0]).toBe(3 + 20 + 100);
    expect(s.values[s.width * s.height - 1]).toBe(0 + 0 + 100);
    expect(s.voxelAt(0, 0)).toEqual([3, 2, 1]);
    for (let row = 0; row < s.height; row++) {
      for (let col = 1; col < s.width; col++) {
        expect(voxelToMm(affine, s.voxelAt(col, row))[0]).toBeGreaterThan(voxelToMm(affine, s.voxelAt(col - 1, row))[0]);
      }
    }
  });

  it('coronal and sagittal slices keep superior up', () => {
    const c = sliceThrough(data, dims, affine, 'y', [0, 1, 0]);
    expect([c.width, c.height]).toEqual([4, 2]);
    expect(c.voxelAt(0, 0)[2]).toBe(1);
    expect(c.values[0]).toBe(3 + 10 + 100);
    const s = sliceThrough(data, dims, affine, 'x', [2, 0, 0]);
    expect([s.width, s.height]).toEqual([3, 2]);
    expect(s.values[s.width - 1]).toBe(2 + 20 + 100);
  });

  it('display range ignores zeros and outliers', () => {
    const xs = Float32Array.from({ length: 1000 }, (_, i) => (i < 500 ? 0 : i));
    xs[999] = 1e9;
    const [lo, hi] = displayRange(xs);
    expect(lo).toBeGreaterThanOrEqual(500);
    expect(hi).toBeLessThan(1e9);
  });
});

describe('in-memory NIfTI for NiiVue', () => {
  it('nifti-reader-js reads back the grid, voxel sizes, sform and values', () => {
    const dims = [5, 4, 3] as const;
    const affine = [
      [-4, 0, 0, 78],
      [0, 4, 0, -112],
      [0, 0, 4, -68],
      [0, 0, 0, 1],
    ];
    const data = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 100);
    data[7] = NaN;
    const buf = niftiFloat32(dims, affine, data);
    expect(nifti.isNIFTI1(buf)).toBe(true);
    const h = nifti.readHeader(buf) as nifti.NIFTI1;
    expect(h.dims.slice(0, 4)).toEqual([3, 5, 4, 3]);
    expect(h.datatypeCode).toBe(16);
    expect(h.pixDims.slice(1, 4)).toEqual([4, 4, 4]);
    expect(h.sform_code).toBe(2);
    expect(h.affine.slice(0, 3)).toEqual(affine.slice(0, 3));
    const back = new Float32Array(nifti.readImage(h, buf));
    expect(back[7]).toBeNaN();
    back[7] = data[7] = 0;
    expect(Array.from(back)).toEqual(Array.from(data));
  });
});

describe('history', () => {
  it('fdrThreshold is the smallest |r| among significant pairs, NaN when none', () => {
    expect(fdrThreshold([0.9, -0.4, 0.5, 0.1], [1, 1, 0, 0])).toBeCloseTo(0.4, 12);
    expect(fdrThreshold([0.9, 0.8], [0, 0])).toBeNaN();
  });

  it('ignores TRs outside the run and keeps `last` right after truncation', () => {
    const h = new TrHistory(10);
    expect(h.at(-1)).toBeUndefined();
    expect(h.at(10)).toBeUndefined();
    h.at(2)!.cka = Float32Array.of(1);
    h.at(7)!.cka = Float32Array.of(2);
    h.truncateAfter(5);
    expect(h.last).toBe(2);
    expect(h.size).toBe(1);
    expect(Array.from(h.series((r) => r.cka?.[0])).map((x) => (Number.isNaN(x) ? null : x))).toEqual([null, null, 1, null, null, null, null, null, null, null]);
  });
});
