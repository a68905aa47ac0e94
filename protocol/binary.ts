/**
 * Binary frames: a fixed 40-byte little-endian header followed by one typed array.
 * Maps, matrices, unit responses and movie thumbnails travel this way so that a browser
 * can view the payload as a Float32Array/Uint8Array without parsing. The header is a
 * multiple of 8 bytes, so the payload of a frame received into its own ArrayBuffer is
 * aligned for every dtype (float64 included).
 *
 * Layout (offsets in bytes, all little-endian):
 *
 *   0  u32  magic 0x434E5953 ("SYNC" as bytes S Y N C)
 *   4  u8   header version (BINARY_VERSION)
 *   5  u8   message type (1 = topic update, 2 = session array)
 *   6  u8   topic id (TOPIC_IDS)
 *   7  u8   part (which array of the topic, TOPIC_PARTS)
 *   8  u32  TR index
 *  12  u32  sequence number
 *  16  u8   dtype (DTYPE_CODES)
 *  17  u8   ndim (0..4)
 *  18  u16  reserved, 0
 *  20  u32×4 shape (unused dims are 0)
 *  36  u32  payload byte length (= product(shape) × bytes per element)
 *  40  ...  payload
 *
 * Decoding checks every field and throws PROTOCOL_BAD_FRAME naming what is wrong, so a
 * corrupted or hostile frame never yields a wrong-sized array.
 */
import { SyncactError } from '../server/errors.ts';
import { BINARY_VERSION } from './version.ts';
import { topicName, type TopicId } from './topics.ts';

export const FRAME_MAGIC = 0x434e5953;
export const HEADER_BYTES = 40;
export const MAX_NDIM = 4;

export const BINARY_TYPES = { update: 1, session: 2 } as const;
export type BinaryType = keyof typeof BINARY_TYPES;

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

export const DTYPE_CODES = {
  uint8: 1,
  int8: 2,
  uint16: 3,
  int16: 4,
  uint32: 5,
  int32: 6,
  float32: 7,
  float64: 8,
} as const;
export type Dtype = keyof typeof DTYPE_CODES;

type ArrayCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray; BYTES_PER_ELEMENT: number };

const CTORS: Record<Dtype, ArrayCtor> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

const DTYPE_BY_CODE = new Map<number, Dtype>((Object.entries(DTYPE_CODES) as [Dtype, number][]).map(([k, v]) => [v, k]));
const TYPE_BY_CODE = new Map<number, BinaryType>((Object.entries(BINARY_TYPES) as [BinaryType, number][]).map(([k, v]) => [v, k]));

/** The wire only carries little-endian payloads; typed arrays use the host's order. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface Frame {
  type: BinaryType;
  topic: TopicId;
  part: number;
  tr: number;
  seq: number;
  /** Row-major (last dim fastest); empty for a scalar. */
  shape: number[];
  data: TypedArray;
}

export function dtypeOf(data: TypedArray): Dtype {
  for (const [name, ctor] of Object.entries(CTORS) as [Dtype, ArrayCtor][]) {
    if (data instanceof ctor) return name;
  }
  throw new SyncactError('PROTOCOL_BAD_FRAME', 'payload is not a supported typed array');
}

const bad = (message: string) => new SyncactError('PROTOCOL_BAD_FRAME', message);

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Encodes one frame into a new buffer (header + a copy of the payload bytes). */
export function encodeFrame(frame: Frame): Uint8Array {
  if (!HOST_LITTLE_ENDIAN) throw bad('big-endian hosts cannot encode frames');
  const { shape, data } = frame;
  if (shape.length > MAX_NDIM) throw bad(`ndim ${shape.length} exceeds ${MAX_NDIM}`);
  if (!shape.every(isU32)) throw bad(`shape [${shape.join(', ')}] has a dimension that is not a u32`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw bad(`shape [${shape.join(', ')}] holds ${count} elements, payload has ${data.length}`);
  if (!isU32(frame.tr) || !isU32(frame.seq)) throw bad(`tr ${frame.tr} or seq ${frame.seq} is not a u32`);
  if (!Number.isInteger(frame.part) || frame.part < 0 || frame.part > 255) throw bad(`part ${frame.part} is not a byte`);
  const dtype = dtypeOf(data);
  const out = new Uint8Array(HEADER_BYTES + data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint8(4, BINARY_VERSION);
  view.setUint8(5, BINARY_TYPES[frame.type]);
  view.setUint8(6, frame.topic);
  view.setUint8(7, frame.part);
  view.setUint32(8, frame.tr, true);
  view.setUint32(12, frame.seq, true);
  view.setUint8(16, DTYPE_CODES[dtype]);
  view.setUint8(17, shape.length);
  view.setUint16(18, 0, true);
  for (let i = 0; i < MAX_NDIM; i++) view.setUint32(20 + 4 * i, shape[i] ?? 0, true);
  view.setUint32(36, data.byteLength, true);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), HEADER_BYTES);
  return out;
}

/**
 * Decodes one frame. The payload is a view on `bytes` when it is aligned for its dtype,
 * otherwise a copy (Node's pooled Buffers can start at any offset).
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (!HOST_LITTLE_ENDIAN) throw bad('big-endian hosts cannot decode frames');
  if (bytes.byteLength < HEADER_BYTES) throw bad(`frame of ${bytes.byteLength} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== FRAME_MAGIC) throw bad(`bad magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${FRAME_MAGIC.toString(16)})`);
  const version = view.getUint8(4);
  if (version !== BINARY_VERSION) {
    throw new SyncactError('PROTOCOL_VERSION_MISMATCH', `binary frame version ${version}, this side speaks ${BINARY_VERSION}`);
  }
  const type = TYPE_BY_CODE.get(view.getUint8(5));
  if (!type) throw bad(`unknown binary message type ${view.getUint8(5)}`);
  const topicId = view.getUint8(6);
  if (topicName(topicId) === undefined) throw bad(`unknown topic id ${topicId}`);
  const part = view.getUint8(7);
  const tr = view.getUint32(8, true);
  const seq = view.getUint32(12, true);
  const dtype = DTYPE_BY_CODE.get(view.getUint8(16));
  if (!dtype) throw bad(`unknown dtype code ${view.getUint8(16)}`);
  const ndim = view.getUint8(17);
  if (ndim > MAX_NDIM) throw bad(`ndim ${ndim} exceeds ${MAX_NDIM}`);
  if (view.getUint16(18, true) !== 0) throw bad('reserved header bytes 18..19 are not zero');
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < MAX_NDIM; i++) {
    const d = view.getUint32(20 + 4 * i, true);
    if (i < ndim) {
      shape.push(d);
      count *= d;
    } else if (d !== 0) {
      throw bad(`shape slot ${i} is ${d} but ndim is ${ndim}`);
    }
  }
  const ctor = CTORS[dtype];
  const payloadBytes = view.getUint32(36, true);
  if (count * ctor.BYTES_PER_ELEMENT !== payloadBytes) {
    throw bad(`payload length ${payloadBytes} does not match shape [${shape.join(', ')}] of ${dtype}`);
  }
  if (bytes.byteLength !== HEADER_BYTES + payloadBytes) {
    throw bad(`frame is ${bytes.byteLength} bytes, header says ${HEADER_BYTES + payloadBytes}`);
  }
  const start = bytes.byteOffset + HEADER_BYTES;
  let data: TypedArray;
  if (start % ctor.BYTES_PER_ELEMENT === 0) {
    data = new ctor(bytes.buffer, start, count);
  } else {
    data = new ctor(count);
    new Uint8Array(data.buffer).set(bytes.subarray(HEADER_BYTES));
  }
  return { type, topic: topicId as TopicId, part, tr, seq, shape, data };
}
