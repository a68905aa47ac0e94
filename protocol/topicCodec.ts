/**
 * Turns the pipeline's per-TR state into the wire messages of each topic, and wire
 * messages back into typed values (what the dashboard and the tests use). One function
 * per topic so the server can encode a topic once per TR and share the bytes among all
 * of its subscribers.
 */
import { decodeFrame, encodeFrame, type Frame } from './binary.ts';
import type {
  AnnotationsMessage,
  MapMessage,
  ServerMessage,
  StateMessage,
  TelemetryMessage,
} from './messages.ts';
import { MESSAGES } from './messages.ts';
import type { AnnotationRow, BrainMap, SessionInfo, TrState } from './state.ts';
import { TOPIC_IDS, TOPIC_PARTS } from './topics.ts';
import { mapShape, scatterMap, type SliceSet } from './mapLayout.ts';
import { SyncactError } from '../server/errors.ts';

/** One WebSocket message: a string is sent as a text frame, bytes as a binary frame. */
export type Wire = string | Uint8Array;

const part = <T extends keyof typeof TOPIC_PARTS>(topic: T, name: (typeof TOPIC_PARTS)[T][number]): number =>
  (TOPIC_PARTS[topic] as readonly string[]).indexOf(name);

export function encodeStateTopic(s: TrState, seq: number): Wire[] {
  const msg: StateMessage = { type: 'state', v: MESSAGES.state.version, tr: s.tr, seq, time: s.time, clock: s.clock };
  return [JSON.stringify(msg)];
}

export function encodeUnitsTopic(s: TrState, seq: number): Wire[] {
  const base = { type: 'update' as const, topic: TOPIC_IDS.units, tr: s.tr, seq };
  return [
    encodeFrame({ ...base, part: part('units', 'unitResponses'), shape: [s.unitResponses.length], data: s.unitResponses }),
    encodeFrame({ ...base, part: part('units', 'features'), shape: [s.features.length], data: s.features }),
  ];
}

/** r, q and significance as [units, features] matrices. */
export function encodeCouplingTopic(s: TrState, seq: number): Wire[] {
  const shape = [s.unitResponses.length, s.features.length];
  const base = { type: 'update' as const, topic: TOPIC_IDS.coupling, tr: s.tr, seq, shape };
  return [
    encodeFrame({ ...base, part: part('coupling', 'r'), data: s.coupling }),
    encodeFrame({ ...base, part: part('coupling', 'q'), data: s.couplingQ }),
    encodeFrame({ ...base, part: part('coupling', 'significant'), data: s.significant }),
  ];
}

/** Null when the TR has no movie frame (nothing is published for the topic then). */
export function encodeFrameTopic(s: TrState, seq: number): Wire[] | null {
  if (!s.frame) return null;
  const { width, height, rgb } = s.frame;
  return [encodeFrame({ type: 'update', topic: TOPIC_IDS.frame, part: 0, tr: s.tr, seq, shape: [height, width, 3], data: rgb })];
}

export function encodeCkaTopic(s: TrState, seq: number): Wire[] {
  return [encodeFrame({ type: 'update', topic: TOPIC_IDS.cka, part: 0, tr: s.tr, seq, shape: [s.cka.length], data: s.cka })];
}

export function encodeTelemetryTopic(s: TrState, seq: number, server: { clients: number; dropped: number }): Wire[] {
  const msg: TelemetryMessage = {
    type: 'telemetry',
    v: MESSAGES.telemetry.version,
    tr: s.tr,
    seq,
    stageMs: s.telemetry.stageMs,
    trsPerSecond: s.telemetry.trsPerSecond,
    lagMs: s.telemetry.lagMs,
    clients: server.clients,
    dropped: server.dropped,
  };
  return [JSON.stringify(msg)];
}

export function encodeAnnotationsTopic(rows: AnnotationRow[], tr: number, seq: number): Wire[] {
  const msg: AnnotationsMessage = { type: 'annotations', v: MESSAGES.annotations.version, tr, seq, rows };
  return [JSON.stringify(msg)];
}

/** A `map` description and its binary frame (same seq). */
export function encodeMapTopic(info: SessionInfo, map: BrainMap, slices: SliceSet | null, tr: number, seq: number): Wire[] {
  if (map.values.length !== info.maskIndices.length) {
    throw new SyncactError(
      'SESSION_FAULT',
      `map ${map.kind} ${map.index} has ${map.values.length} values, the mask has ${info.maskIndices.length} voxels`,
    );
  }
  const shape = mapShape(info.grid.dims, slices);
  const meta: MapMessage = {
    type: 'map',
    v: MESSAGES.map.version,
    tr,
    seq,
    mapTr: map.tr,
    kind: map.kind,
    index: map.index,
    slices,
    shape,
  };
  const data = scatterMap(info.grid.dims, info.maskIndices, map.values, slices);
  return [JSON.stringify(meta), encodeFrame({ type: 'update', topic: TOPIC_IDS.map, part: 0, tr, seq, shape, data })];
}

/** The session's arrays that follow `hello`. */
export function encodeSessionArrays(info: SessionInfo, tr: number, seq: number): Wire[] {
  const base = { type: 'session' as const, topic: TOPIC_IDS.session, tr: Math.max(tr, 0), seq };
  return [
    encodeFrame({ ...base, part: 0, shape: [info.maskIndices.length], data: info.maskIndices }),
    encodeFrame({ ...base, part: 1, shape: [info.background.length], data: info.background }),
  ];
}

export type Decoded = { kind: 'json'; message: ServerMessage } | { kind: 'frame'; frame: Frame };

/**
 * Decodes one message from the server. JSON is checked for a known server `type` and its
 * version; fields are trusted (the server is the validating side).
 */
export function decodeServerMessage(data: Wire | ArrayBuffer): Decoded {
  if (typeof data !== 'string') {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    return { kind: 'frame', frame: decodeFrame(bytes) };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    throw new SyncactError('PROTOCOL_INVALID_MESSAGE', `server sent text that is not JSON: ${JSON.stringify(data.slice(0, 40))}`);
  }
  const type = (raw as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGES, type) || MESSAGES[type as keyof typeof MESSAGES].from !== 'server') {
    throw new SyncactError('PROTOCOL_UNKNOWN_TYPE', `unknown server message type ${JSON.stringify(type)}`);
  }
  const version = MESSAGES[type as keyof typeof MESSAGES].version;
  if ((raw as { v?: unknown }).v !== version) {
    throw new SyncactError('PROTOCOL_VERSION_MISMATCH', `${type}: version ${JSON.stringify((raw as { v?: unknown }).v)}, expected ${version}`);
  }
  return { kind: 'json', message: raw as ServerMessage };
}
