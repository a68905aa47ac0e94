/**
 * Gabor filters for the S1 layer of the built-in HMAX model (Serre, Wolf, Bileschi,
 * Riesenhuber & Poggio 2007, "Robust object recognition with cortex-like mechanisms",
 * PAMI 29(3)): the receptive fields of V1 simple cells,
 *   G(x, y) = exp(−(X² + γ²Y²) / 2σ²) · cos(2πX/λ + φ),  X = x cosθ + y sinθ,  Y = −x sinθ + y cosθ,
 * cut to a disc of the filter's size, made zero-mean (no response to uniform luminance) and
 * unit-norm (all sizes and orientations on one scale).
 *
 * Orientation convention: θ is the direction ACROSS the bars (the grating's wave vector),
 * measured from +x (right) towards +y (down the image, row order). So θ = 0° is a filter
 * for vertical bars (luminance varying along x) and θ = 90° for horizontal bars, the
 * names `grating_0` / `grating_90` of the synthetic movie (server/synth/features.ts).
 */

export interface GaborSpec {
  /** Side of the square kernel in pixels (odd). */
  size: number;
  /** Wavelength of the carrier (pixels per cycle). */
  wavelength: number;
  /** Width of the Gaussian envelope across the bars (pixels). */
  sigma: number;
  /** Aspect ratio of the envelope (along the bars it is σ/γ wide). */
  gamma: number;
  /** Direction across the bars, radians (see the convention above). */
  theta: number;
  /** Carrier phase: 0 even (cosine, bar detector), −π/2 odd (sine, edge detector). */
  phase: number;
}

/**
 * Serre et al. (2007, Table 1) tie σ and λ to the filter size so that each size is one
 * spatial-frequency band: σ = 0.0036·s² + 0.35·s + 0.18, λ = σ / 0.8, γ = 0.3.
 */
export function serreGabor(size: number, theta: number, phase = 0): GaborSpec {
  const sigma = 0.0036 * size * size + 0.35 * size + 0.18;
  return { size, wavelength: sigma / 0.8, sigma, gamma: 0.3, theta, phase };
}

/** The kernel, row-major size×size (row = y), zero-mean and unit L2 norm over its disc. */
export function gaborKernel(g: GaborSpec): Float32Array {
  const { size, wavelength, sigma, gamma, theta, phase } = g;
  if (!Number.isInteger(size) || size < 3 || size % 2 === 0) throw new RangeError(`Gabor size ${size} must be an odd integer ≥ 3`);
  const half = (size - 1) / 2;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const k = new Float64Array(size * size);
  const inside = new Uint8Array(size * size);
  let sum = 0;
  let count = 0;
  for (let y = -half; y <= half; y++) {
    for (let x = -half; x <= half; x++) {
      const i = (y + half) * size + (x + half);
      // Serre's filters are cut to a disc, so no orientation sees the square's corners.
      if (x * x + y * y > half * half + 1e-9) continue;
      const X = x * cos + y * sin;
      const Y = -x * sin + y * cos;
      k[i] = Math.exp(-(X * X + gamma * gamma * Y * Y) / (2 * sigma * sigma)) * Math.cos((2 * Math.PI * X) / wavelength + phase);
      inside[i] = 1;
      sum += k[i];
      count++;
    }
  }
  const mean = sum / count;
  let norm = 0;
  for (let i = 0; i < k.length; i++) {
    if (inside[i]) {
      k[i] -= mean;
      norm += k[i] * k[i];
    }
  }
  norm = Math.sqrt(norm);
  return Float32Array.from(k, (v) => v / norm);
}

/**
 * A bank of kernels as one TF.js conv2d weight, [kh, kw, 1, filters] flattened (HWIO): each
 * kernel is centred in a `side`×`side` window (smaller ones zero-padded), so filters of
 * several sizes run as one convolution with aligned centres.
 */
export function filterBank(kernels: { size: number; values: Float32Array }[], side: number): Float32Array {
  const out = new Float32Array(side * side * kernels.length);
  kernels.forEach((kern, f) => {
    if (kern.size > side || (side - kern.size) % 2 !== 0) throw new RangeError(`kernel of size ${kern.size} does not centre in ${side}`);
    const off = (side - kern.size) / 2;
    for (let y = 0; y < kern.size; y++) {
      for (let x = 0; x < kern.size; x++) out[((y + off) * side + (x + off)) * kernels.length + f] = kern.values[y * kern.size + x];
    }
  });
  return out;
}
