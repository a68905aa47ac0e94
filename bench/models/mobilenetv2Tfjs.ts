/**
 * MobileNetV2 as a TF.js layers model built in code (NHWC, 'same' padding as Keras), the
 * same architecture as the ONNX builder (mobilenetv2Arch.ts) with seeded He-normal weights.
 * Layer names follow the architecture list (`block_16_out`, `features`, `logits`), so the
 * same taps work in both benchmarks. Select the TF.js backend before calling: weights are
 * created on the current one.
 */
import * as tf from '@tensorflow/tfjs';
import { mobilenetV2Layers } from './mobilenetv2Arch.ts';

export function buildMobileNetV2Tfjs(options: { seed?: number; size?: number; classes?: number } = {}): tf.LayersModel {
  const seed = options.seed ?? 1;
  const size = options.size ?? 224;
  const input = tf.input({ shape: [size, size, 3], name: 'input' });
  const out = new Map<string, tf.SymbolicTensor>([['input', input]]);
  let k = 0;
  const he = (scale: number) => tf.initializers.varianceScaling({ scale, mode: 'fanIn', distribution: 'normal', seed: seed * 1000 + k++ });
  const bias = tf.initializers.randomNormal({ stddev: 0.01, seed: seed * 7 + 3 });
  let last: tf.SymbolicTensor = input;
  for (const l of mobilenetV2Layers(options.classes ?? 1000)) {
    if (l.op === 'conv') {
      const x = out.get(l.input)!;
      const conv =
        l.groups === 1
          ? tf.layers.conv2d({
              filters: l.cout,
              kernelSize: l.k,
              strides: l.stride,
              padding: 'same',
              name: l.relu6 ? `${l.name}_conv` : l.name,
              kernelInitializer: he(l.relu6 ? 2 : 1),
              biasInitializer: bias,
            })
          : tf.layers.depthwiseConv2d({
              kernelSize: l.k,
              strides: l.stride,
              padding: 'same',
              name: `${l.name}_conv`,
              depthwiseInitializer: he(2),
              biasInitializer: bias,
            });
      let y = conv.apply(x) as tf.SymbolicTensor;
      if (l.relu6) y = tf.layers.reLU({ maxValue: 6, name: l.name }).apply(y) as tf.SymbolicTensor;
      out.set(l.name, y);
      last = y;
    } else if (l.op === 'add') {
      last = tf.layers.add({ name: l.name }).apply(l.inputs.map((n) => out.get(n)!)) as tf.SymbolicTensor;
      out.set(l.name, last);
    } else if (l.op === 'gap') {
      last = tf.layers.globalAveragePooling2d({ name: l.name }).apply(out.get(l.input)!) as tf.SymbolicTensor;
      out.set(l.name, last);
    } else {
      last = tf.layers
        .dense({ units: l.cout, name: l.name, kernelInitializer: he(1), biasInitializer: bias })
        .apply(out.get(l.input)!) as tf.SymbolicTensor;
      out.set(l.name, last);
    }
  }
  return tf.model({ inputs: input, outputs: last, name: 'mobilenet_v2' });
}
