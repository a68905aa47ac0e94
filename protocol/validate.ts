/**
 * Validation of what clients send. Hand-written (no schema library): each message type
 * has one check that returns the typed message or throws a SyncactError whose code says
 * what kind of problem it is and whose message names the offending field. The server
 * turns the error into an `error` reply; nothing a client sends can throw anything else.
 *
 * Order of checks: binary → PROTOCOL_BAD_FRAME; not JSON / not an object →
 * PROTOCOL_INVALID_MESSAGE; unknown or server-only `type` → PROTOCOL_UNKNOWN_TYPE; `v`
 * not the type's version → PROTOCOL_VERSION_MISMATCH; then the fields.
 */
import { SyncactError } from '../server/errors.ts';
import { decodeFrame } from './binary.ts';
import {
  MESSAGES,
  SPEED_MAX,
  SPEED_MIN,
  type ClientMessage,
  type ControlCommand,
  type MapSpec,
  type MessageType,
} from './messages.ts';
import { isTopic, TOPICS, type Topic } from './topics.ts';

/** Bounds on sizes inside messages, far above legitimate use. */
export const LIMITS = { tokenChars: 256, sliceIndices: 1024 } as const;

const invalid = (message: string) => new SyncactError('PROTOCOL_INVALID_MESSAGE', message);

type Obj = Record<string, unknown>;

function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isIndex(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

/** Fields other than the known ones are refused, so typos do not pass silently. */
function onlyKeys(o: Obj, type: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalid(`${type}: unknown field "${k}"`);
  }
}

function optionalId(o: Obj, type: string): number | undefined {
  if (o.id === undefined) return undefined;
  if (!isIndex(o.id)) throw invalid(`${type}: id must be an integer in 0..4294967295`);
  return o.id;
}

function topicList(x: unknown, type: string): Topic[] {
  if (!Array.isArray(x)) throw invalid(`${type}: topics must be an array of topic names`);
  if (x.length > TOPICS.length) throw invalid(`${type}: at most ${TOPICS.length} topics`);
  const out: Topic[] = [];
  for (const t of x) {
    if (!isTopic(t)) throw invalid(`${type}: unknown topic ${JSON.stringify(t)?.slice(0, 40)} (topics: ${TOPICS.join(', ')})`);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

export function validateMapSpec(x: unknown): MapSpec {
  if (!isObject(x)) throw invalid('subscribe: map must be an object');
  onlyKeys(x, 'subscribe.map', ['kind', 'index', 'slices']);
  const spec: MapSpec = {};
  if (x.kind !== undefined) {
    if (x.kind !== 'unit-t' && x.kind !== 'unit-beta' && x.kind !== 'network') {
      throw invalid('subscribe.map: kind must be "unit-t", "unit-beta" or "network"');
    }
    spec.kind = x.kind;
  }
  if (x.index !== undefined) {
    if (!isIndex(x.index)) throw invalid('subscribe.map: index must be a non-negative integer');
    spec.index = x.index;
  }
  if (x.slices !== undefined) {
    const s = x.slices;
    if (!isObject(s)) throw invalid('subscribe.map: slices must be {axis, indices}');
    onlyKeys(s, 'subscribe.map.slices', ['axis', 'indices']);
    if (s.axis !== 'x' && s.axis !== 'y' && s.axis !== 'z') throw invalid('subscribe.map.slices: axis must be "x", "y" or "z"');
    if (!Array.isArray(s.indices) || s.indices.length === 0 || s.indices.length > LIMITS.sliceIndices) {
      throw invalid(`subscribe.map.slices: indices must be 1..${LIMITS.sliceIndices} slice numbers`);
    }
    if (!s.indices.every(isIndex)) throw invalid('subscribe.map.slices: indices must be non-negative integers');
    spec.slices = { axis: s.axis, indices: [...(s.indices as number[])] };
  }
  return spec;
}

export function validateControlCommand(x: unknown): ControlCommand {
  if (!isObject(x)) throw invalid('control: command must be an object with an "op"');
  switch (x.op) {
    case 'play':
    case 'pause':
      onlyKeys(x, `control.${x.op}`, ['op']);
      return { op: x.op };
    case 'seek':
      onlyKeys(x, 'control.seek', ['op', 'tr']);
      if (!isIndex(x.tr)) throw invalid('control.seek: tr must be a non-negative integer');
      return { op: 'seek', tr: x.tr };
    case 'speed':
      onlyKeys(x, 'control.speed', ['op', 'speed']);
      if (x.speed === 'max') return { op: 'speed', speed: 'max' };
      if (typeof x.speed !== 'number' || !(x.speed >= SPEED_MIN && x.speed <= SPEED_MAX)) {
        throw invalid(`control.speed: speed must be a number in ${SPEED_MIN}..${SPEED_MAX} or "max"`);
      }
      return { op: 'speed', speed: x.speed };
    case 'loop':
      onlyKeys(x, 'control.loop', ['op', 'loop']);
      if (typeof x.loop !== 'boolean') throw invalid('control.loop: loop must be true or false');
      return { op: 'loop', loop: x.loop };
    case 'select':
      onlyKeys(x, 'control.select', ['op', 'target', 'index']);
      if (x.target !== 'unit' && x.target !== 'network') throw invalid('control.select: target must be "unit" or "network"');
      if (!isIndex(x.index)) throw invalid('control.select: index must be a non-negative integer');
      return { op: 'select', target: x.target, index: x.index };
    default:
      throw invalid(`control: unknown op ${JSON.stringify(x.op)?.slice(0, 40)} (play, pause, seek, speed, loop, select)`);
  }
}

/** The topics named by a `?topics=a,b` query value, and the names that are not topics. */
export function parseTopicsQuery(raw: string | null): { topics: Topic[]; unknown: string[] } {
  const names = (raw ?? '').split(',').filter((n) => n.length > 0);
  return { topics: [...new Set(names.filter(isTopic))], unknown: names.filter((n) => !isTopic(n)) };
}

/** Parses and validates one message from a client (a WebSocket text or binary frame). */
export function parseClientMessage(data: string | Uint8Array, isBinary: boolean): ClientMessage {
  if (isBinary) {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    decodeFrame(bytes); // a precise PROTOCOL_BAD_FRAME for garbage
    throw new SyncactError('PROTOCOL_BAD_FRAME', 'clients send JSON text messages only; binary frames are server → client');
  }
  const text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: false }).decode(data);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid(`not JSON: ${JSON.stringify(text.slice(0, 40))}${text.length > 40 ? '…' : ''}`);
  }
  if (!isObject(raw)) throw invalid('a message must be a JSON object with "type" and "v"');
  const type = raw.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGES, type)) {
    throw new SyncactError('PROTOCOL_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
  const decl = MESSAGES[type as MessageType];
  if (decl.from !== 'client') {
    throw new SyncactError('PROTOCOL_UNKNOWN_TYPE', `"${type}" is sent by the server, not by clients`);
  }
  if (raw.v !== decl.version) {
    throw new SyncactError(
      'PROTOCOL_VERSION_MISMATCH',
      `${type}: version ${JSON.stringify(raw.v)?.slice(0, 20)}, this server speaks ${type} v${decl.version}`,
    );
  }
  const id = optionalId(raw, type);
  const withId = <T extends object>(m: T) => (id === undefined ? m : { ...m, id });
  switch (type) {
    case 'subscribe': {
      onlyKeys(raw, type, ['type', 'v', 'id', 'topics', 'map']);
      const topics = topicList(raw.topics, type);
      const msg: ClientMessage = withId({ type: 'subscribe' as const, v: 1 as const, topics });
      if (raw.map !== undefined) msg.map = validateMapSpec(raw.map);
      return msg;
    }
    case 'unsubscribe':
      onlyKeys(raw, type, ['type', 'v', 'id', 'topics']);
      return withId({ type: 'unsubscribe' as const, v: 1 as const, topics: topicList(raw.topics, type) });
    case 'auth':
      onlyKeys(raw, type, ['type', 'v', 'id', 'token']);
      if (typeof raw.token !== 'string' || raw.token.length === 0 || raw.token.length > LIMITS.tokenChars) {
        throw invalid(`auth: token must be a string of 1..${LIMITS.tokenChars} characters`);
      }
      return withId({ type: 'auth' as const, v: 1 as const, token: raw.token });
    case 'control':
      onlyKeys(raw, type, ['type', 'v', 'id', 'command']);
      return withId({ type: 'control' as const, v: 1 as const, command: validateControlCommand(raw.command) });
    case 'ping':
      onlyKeys(raw, type, ['type', 'v', 'id']);
      return withId({ type: 'ping' as const, v: 1 as const });
  }
  throw new SyncactError('PROTOCOL_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type)}`);
}
