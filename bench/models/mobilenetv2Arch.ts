/**
 * MobileNetV2 (Sandler et al. 2018, width multiplier 1.0, 224×224 input) as a flat list of
 * layers, shared by the TF.js and ONNX builders so both benchmarks run the same
 * architecture: a 3×3 stride-2 stem (32), 17 inverted residual blocks (1×1 expansion with
 * ReLU6, 3×3 depthwise with ReLU6, linear 1×1 projection, residual add when the stride is 1
 * and the width unchanged), a 1×1 conv to 1280, global average pool and a 1000-way dense
 * layer. Batch norm is left out: at inference it folds into the conv weights and biases,
 * which is what exported models and runtimes do anyway.
 */

/** (expansion t, output channels c, repeats n, first stride s), the paper's Table 2. */
export const MOBILENETV2_STAGES: readonly [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export type ArchLayer =
  | { op: 'conv'; name: string; input: string; cin: number; cout: number; k: number; stride: number; groups: number; relu6: boolean }
  | { op: 'add'; name: string; inputs: [string, string] }
  | { op: 'gap'; name: string; input: string }
  | { op: 'dense'; name: string; input: string; cin: number; cout: number };

/**
 * The layers in order; each names its output (the tensor / layer name the builders use) and
 * its inputs ('input' is the image). `block_<i>_out` are the block outputs, `features` the
 * 1280-channel map before pooling, `logits` the classifier.
 */
export function mobilenetV2Layers(classes = 1000): ArchLayer[] {
  const L: ArchLayer[] = [];
  L.push({ op: 'conv', name: 'stem', input: 'input', cin: 3, cout: 32, k: 3, stride: 2, groups: 1, relu6: true });
  let x = 'stem';
  let cin = 32;
  let b = 0;
  for (const [t, c, n, s] of MOBILENETV2_STAGES) {
    for (let i = 0; i < n; i++, b++) {
      const stride = i === 0 ? s : 1;
      const hidden = cin * t;
      let h = x;
      if (t !== 1) {
        L.push({ op: 'conv', name: `block_${b}_expand`, input: h, cin, cout: hidden, k: 1, stride: 1, groups: 1, relu6: true });
        h = `block_${b}_expand`;
      }
      L.push({ op: 'conv', name: `block_${b}_depthwise`, input: h, cin: hidden, cout: hidden, k: 3, stride, groups: hidden, relu6: true });
      const proj = stride === 1 && cin === c ? `block_${b}_project` : `block_${b}_out`;
      L.push({ op: 'conv', name: proj, input: `block_${b}_depthwise`, cin: hidden, cout: c, k: 1, stride: 1, groups: 1, relu6: false });
      if (proj !== `block_${b}_out`) L.push({ op: 'add', name: `block_${b}_out`, inputs: [x, proj] });
      x = `block_${b}_out`;
      cin = c;
    }
  }
  L.push({ op: 'conv', name: 'features', input: x, cin, cout: 1280, k: 1, stride: 1, groups: 1, relu6: true });
  L.push({ op: 'gap', name: 'pool', input: 'features' });
  L.push({ op: 'dense', name: 'logits', input: 'pool', cin: 1280, cout: classes });
  return L;
}
