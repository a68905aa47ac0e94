import { describe, expect, it } from 'vitest';
import {
  DTYPE_CODES,
  FRAME_MAGIC,
  HEADER_BYTES,
  decodeFrame,
  dtypeOf,
  encodeFrame,
  type Dtype,
  type Frame,
  type TypedArray,
} from '../../protocol/binary.ts';
import { BINARY_VERSION } from '../../protocol/version.ts';
import { TOPIC_IDS } from '../../protocol/topics.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

const CTORS: Record<Dtype, new (n: number) => TypedArray> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

function sample(dtype: Dtype, n: number, seed: number): TypedArray {
  const rng = createRng(seed);
  const a = new CTORS[dtype](n);
  for (let i = 0; i < n; i++) a[i] = dtype.startsWith('float') ? rng.normal() * 1e3 : rng.int(250) - (dtype.startsWith('int') ? 120 : 0);
  if (dtype.startsWith('float') && n > 2) {
    a[0] = NaN;
    a[1] = -Infinity;
  }
  return a;
}

function frame(data: TypedArray, shape: number[]): Frame {
  return { type: 'update', topic: TOPIC_IDS.coupling, part: 2, tr: 4_000_000_123, seq: 77, shape, data };
}

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SyncactError);
    expect((e as SyncactError).code).toBe(code);
    if (message) expect((e as SyncactError).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('binary frames', () => {
  it.each(Object.keys(DTYPE_CODES) as Dtype[])('round-trips %s payloads bit for bit, NaN and infinities included', (dtype) => {
    const data = sample(dtype, 2 * 3 * 5, 11);
    const bytes = encodeFrame(frame(data, [2, 3, 5]));
    expect(bytes.byteLength).toBe(HEADER_BYTES + data.byteLength);
    const back = decodeFrame(bytes);
    expect(back.type).toBe('update');
    expect(back.topic).toBe(TOPIC_IDS.coupling);
    expect(back.part).toBe(2);
    expect(back.tr).toBe(4_000_000_123);
    expect(back.seq).toBe(77);
    expect(back.shape).toEqual([2, 3, 5]);
    expect(dtypeOf(back.data)).toBe(dtype);
    expect(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
  });

  it('writes the documented header layout (little-endian)', () => {
    const bytes = encodeFrame({ type: 'session', topic: TOPIC_IDS.session, part: 1, tr: 0x01020304, seq: 9, shape: [3, 4], data: new Float64Array(12) });
    const v = new DataView(bytes.buffer);
    expect([...bytes.subarray(0, 4)]).toEqual([0x53, 0x59, 0x4e, 0x43]); // "SYNC"
    expect(v.getUint32(0, true)).toBe(FRAME_MAGIC);
    expect(v.getUint8(4)).toBe(BINARY_VERSION);
    expect(v.getUint8(5)).toBe(2);
    expect(v.getUint8(6)).toBe(0);
    expect(v.getUint8(7)).toBe(1);
    expect([...bytes.subarray(8, 12)]).toEqual([4, 3, 2, 1]);
    expect(v.getUint32(12, true)).toBe(9);
    expect(v.getUint8(16)).toBe(DTYPE_CODES.float64);
    expect(v.getUint8(17)).toBe(2);
    expect([v.getUint32(20, true), v.getUint32(24, true), v.getUint32(28, true), v.getUint32(32, true)]).toEqual([3, 4, 0, 0]);
    expect(v.getUint32(36, true)).toBe(96);
    expect(HEADER_BYTES % 8).toBe(0);
  });

  it('encodes a subarray view (offset into a larger buffer) as just its elements', () => {
    const big = Float32Array.from({ length: 20 }, (_, i) => i);
    const view = big.subarray(5, 11);
    const back = decodeFrame(encodeFrame(frame(view, [6])));
    expect([...back.data]).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('decodes without copying when aligned, and copies when the frame sits at an odd offset', () => {
    const bytes = encodeFrame(frame(Float64Array.from([1.5, -2.25, 3]), [3]));
    const aligned = decodeFrame(bytes);
    expect(aligned.data.buffer).toBe(bytes.buffer);
    const shifted = new Uint8Array(bytes.byteLength + 3);
    shifted.set(bytes, 3);
    const odd = decodeFrame(shifted.subarray(3));
    expect(odd.data.buffer).not.toBe(shifted.buffer);
    expect([...odd.data]).toEqual([1.5, -2.25, 3]);
  });

  it('handles scalars (ndim 0) and empty arrays', () => {
    expect([...decodeFrame(encodeFrame(frame(Float32Array.from([7]), []))).data]).toEqual([7]);
    const empty = decodeFrame(encodeFrame(frame(new Uint8Array(0), [0, 5])));
    expect(empty.shape).toEqual([0, 5]);
    expect(empty.data.length).toBe(0);
  });

  it('refuses to encode inconsistent frames', () => {
    expectCode(() => encodeFrame(frame(new Float32Array(5), [2, 3])), 'PROTOCOL_BAD_FRAME', /holds 6 elements, payload has 5/);
    expectCode(() => encodeFrame(frame(new Float32Array(1), [1, 1, 1, 1, 1])), 'PROTOCOL_BAD_FRAME', /ndim 5/);
    expectCode(() => encodeFrame({ ...frame(new Float32Array(1), [1]), tr: -1 }), 'PROTOCOL_BAD_FRAME', /tr -1/);
  });

  describe('rejects damaged frames with typed errors', () => {
    const good = () => encodeFrame(frame(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]));
    const poke = (offset: number, value: number, width: 8 | 16 | 32 = 8) => {
      const b = good();
      const v = new DataView(b.buffer);
      if (width === 8) v.setUint8(offset, value);
      else if (width === 16) v.setUint16(offset, value, true);
      else v.setUint32(offset, value, true);
      return b;
    };
    it('bad magic', () => expectCode(() => decodeFrame(poke(0, 0x4a4f5045, 32)), 'PROTOCOL_BAD_FRAME', /bad magic 0x4a4f5045/));
    it('short frame (inside the header)', () => expectCode(() => decodeFrame(good().subarray(0, 39)), 'PROTOCOL_BAD_FRAME', /39 bytes is shorter than the 40-byte header/));
    it('short frame (payload cut)', () => expectCode(() => decodeFrame(good().subarray(0, 60)), 'PROTOCOL_BAD_FRAME', /60 bytes, header says 64/));
    it('trailing bytes', () => {
      const b = new Uint8Array(65);
      b.set(good());
      expectCode(() => decodeFrame(b), 'PROTOCOL_BAD_FRAME', /65 bytes, header says 64/);
    });
    it('other version', () => expectCode(() => decodeFrame(poke(4, 9)), 'PROTOCOL_VERSION_MISMATCH', /version 9/));
    it('unknown message type', () => expectCode(() => decodeFrame(poke(5, 200)), 'PROTOCOL_BAD_FRAME', /message type 200/));
    it('unknown topic', () => expectCode(() => decodeFrame(poke(6, 99)), 'PROTOCOL_BAD_FRAME', /topic id 99/));
    it('unknown dtype', () => expectCode(() => decodeFrame(poke(16, 42)), 'PROTOCOL_BAD_FRAME', /dtype code 42/));
    it('ndim too large', () => expectCode(() => decodeFrame(poke(17, 5)), 'PROTOCOL_BAD_FRAME', /ndim 5/));
    it('reserved bytes set', () => expectCode(() => decodeFrame(poke(18, 1, 16)), 'PROTOCOL_BAD_FRAME', /reserved/));
    it('shape beyond ndim', () => expectCode(() => decodeFrame(poke(28, 1, 32)), 'PROTOCOL_BAD_FRAME', /slot 2 is 1 but ndim is 2/));
    it('payload length disagreeing with shape', () => expectCode(() => decodeFrame(poke(36, 20, 32)), 'PROTOCOL_BAD_FRAME', /payload length 20/));
    it('a huge shape with a small buffer', () => expectCode(() => decodeFrame(poke(20, 0xffffffff, 32)), 'PROTOCOL_BAD_FRAME', /payload length/));
  });

  it('seeded fuzz: random bytes and mutated frames decode or throw a SyncactError, nothing else', () => {
    const rng = createRng(20261126);
    const base = encodeFrame(frame(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]));
    let decoded = 0;
    for (let i = 0; i < 5000; i++) {
      let bytes: Uint8Array;
      if (i % 3 === 0) {
        bytes = new Uint8Array(rng.int(120));
        for (let j = 0; j < bytes.length; j++) bytes[j] = rng.int(256);
        if (bytes.length >= 4 && rng.uniform() < 0.5) new DataView(bytes.buffer).setUint32(0, FRAME_MAGIC, true);
      } else {
        bytes = base.slice(0, rng.uniform() < 0.2 ? rng.int(base.length + 1) : base.length);
        const flips = 1 + rng.int(4);
        for (let f = 0; f < flips && bytes.length > 0; f++) bytes[rng.int(Math.min(bytes.length, 44))] = rng.int(256);
      }
      try {
        const out = decodeFrame(bytes);
        decoded++;
        expect(out.data.byteLength + HEADER_BYTES).toBe(bytes.byteLength);
        expect(out.shape.reduce((a, b) => a * b, 1)).toBe(out.data.length);
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        expect(['PROTOCOL_BAD_FRAME', 'PROTOCOL_VERSION_MISMATCH']).toContain((e as SyncactError).code);
      }
    }
    // mutations of tr/seq/part bytes leave valid frames: the fuzz reaches both outcomes
    expect(decoded).toBeGreaterThan(0);
  });
});
