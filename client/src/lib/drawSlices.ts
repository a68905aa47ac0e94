/**
 * The brain panel's canvas fallback (no WebGL2): axial, coronal and sagittal slices
 * through the crosshair, background in grey, the overlay thresholded at |v| ≥ threshold
 * in orange (positive) and blue (negative), crosshair lines, and a hit test that turns a
 * click back into a voxel.
 */
import { interpolate, OVERLAY_NEGATIVE, OVERLAY_POSITIVE } from './colormap.ts';
import { sliceThrough, type Affine, type Axis, type Dims, type Slice } from './volume.ts';

export interface SliceViewInput {
  background: Float32Array;
  bgRange: [number, number];
  overlay: Float32Array | null;
  threshold: number;
  overlayMax: number;
  dims: Dims;
  affine: Affine;
  crosshair: [number, number, number];
}

export interface SliceBox {
  axis: Axis;
  x: number;
  y: number;
  scale: number;
  slice: Slice;
}

const AXES: Axis[] = ['z', 'y', 'x'];

/** Lays the three slices out side by side at one common scale, centred vertically. */
export function layoutSlices(input: Pick<SliceViewInput, 'background' | 'dims' | 'affine' | 'crosshair'>, width: number, height: number): SliceBox[] {
  const slices = AXES.map((axis) => sliceThrough(input.background, input.dims, input.affine, axis, input.crosshair));
  const gap = 6;
  const totalW = slices.reduce((a, s) => a + s.width, 0);
  const maxH = Math.max(...slices.map((s) => s.height));
  const scale = Math.max(0.1, Math.min((width - gap * 2) / totalW, height / maxH));
  let x = (width - (totalW * scale + gap * 2)) / 2;
  return slices.map((slice, i) => {
    const box = { axis: AXES[i], x, y: (height - slice.height * scale) / 2, scale, slice };
    x += slice.width * scale + gap;
    return box;
  });
}

export function drawSlices(ctx: CanvasRenderingContext2D, input: SliceViewInput, width: number, height: number): SliceBox[] {
  const boxes = layoutSlices(input, width, height);
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, width, height);
  const [lo, hi] = input.bgRange;
  const { dims } = input;
  for (const b of boxes) {
    const { slice } = b;
    const img = new ImageData(slice.width, slice.height);
    const ov = input.overlay
      ? sliceThrough(input.overlay, dims, input.affine, b.axis, input.crosshair).values
      : null;
    for (let p = 0; p < slice.values.length; p++) {
      const g = Math.max(0, Math.min(255, ((slice.values[p] - lo) / (hi - lo)) * 255));
      let rgb: [number, number, number] = [g, g, g];
      const v = ov ? ov[p] : NaN;
      if (Number.isFinite(v) && Math.abs(v) >= input.threshold && input.threshold >= 0) {
        const t = (Math.abs(v) - input.threshold) / Math.max(1e-9, input.overlayMax - input.threshold);
        rgb = interpolate(v > 0 ? OVERLAY_POSITIVE : OVERLAY_NEGATIVE, t)!;
      }
      img.data[4 * p] = rgb[0];
      img.data[4 * p + 1] = rgb[1];
      img.data[4 * p + 2] = rgb[2];
      img.data[4 * p + 3] = 255;
    }
    const tmp = document.createElement('canvas');
    tmp.width = slice.width;
    tmp.height = slice.height;
    tmp.getContext('2d')!.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, b.x, b.y, slice.width * b.scale, slice.height * b.scale);
    // crosshair: find the screen cell of the crosshair voxel in this slice
    const cell = screenCellOf(slice, input.crosshair);
    if (cell) {
      ctx.strokeStyle = 'rgba(86,180,233,0.9)';
      ctx.lineWidth = 1;
      const cx = b.x + (cell[0] + 0.5) * b.scale;
      const cy = b.y + (cell[1] + 0.5) * b.scale;
      ctx.beginPath();
      ctx.moveTo(cx, b.y);
      ctx.lineTo(cx, b.y + slice.height * b.scale);
      ctx.moveTo(b.x, cy);
      ctx.lineTo(b.x + slice.width * b.scale, cy);
      ctx.stroke();
    }
  }
  return boxes;
}

/** The screen cell (col, row) showing a voxel in a slice, by inverting voxelAt on the two in-plane axes. */
function screenCellOf(slice: Slice, voxel: [number, number, number]): [number, number] | null {
  const probe00 = slice.voxelAt(0, 0);
  const probe11 = slice.voxelAt(1, 1);
  let col = -1;
  let row = -1;
  for (let a = 0; a < 3; a++) {
    if (probe00[a] !== slice.voxelAt(1, 0)[a]) col = probe00[a] < probe11[a] ? voxel[a] - probe00[a] : probe00[a] - voxel[a];
    if (probe00[a] !== slice.voxelAt(0, 1)[a]) row = probe00[a] < probe11[a] ? voxel[a] - probe00[a] : probe00[a] - voxel[a];
  }
  return col >= 0 && row >= 0 ? [col, row] : null;
}

/** The voxel under a point of the fallback view, or null outside the slices. */
export function voxelAtPoint(boxes: SliceBox[], x: number, y: number): [number, number, number] | null {
  for (const b of boxes) {
    const col = Math.floor((x - b.x) / b.scale);
    const row = Math.floor((y - b.y) / b.scale);
    if (col >= 0 && row >= 0 && col < b.slice.width && row < b.slice.height) return b.slice.voxelAt(col, row);
  }
  return null;
}
