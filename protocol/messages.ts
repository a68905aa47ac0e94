/**
 * Every JSON message of the protocol, declared once with its version. Server and client
 * import these same types; the server validates what arrives with validate.ts and the
 * client can check what arrives with parseServerMessage (serverMessages.ts).
 *
 * Every server message carries `tr` (the session's latest TR, -1 before the first) and
 * `seq`: for topic updates (state, map, annotations, telemetry and the binary frames) the
 * topic's publish counter, so a fast client sees no gaps and a coalesced one sees how many
 * it skipped; for session messages (hello, subscribed, ack, pong, error, fault, end) a
 * per-connection counter of those messages.
 */
import type { ErrorCode } from '../server/errors.ts';
import type { AnnotationRow, SessionInfo, Telemetry } from './state.ts';
import type { Topic } from './topics.ts';

/** Message type → its version (the `v` field) and who sends it. */
export const MESSAGES = {
  // client → server
  subscribe: { version: 1, from: 'client' },
  unsubscribe: { version: 1, from: 'client' },
  auth: { version: 1, from: 'client' },
  control: { version: 1, from: 'client' },
  ping: { version: 1, from: 'client' },
  // server → client
  hello: { version: 1, from: 'server' },
  subscribed: { version: 1, from: 'server' },
  ack: { version: 1, from: 'server' },
  pong: { version: 1, from: 'server' },
  error: { version: 1, from: 'server' },
  fault: { version: 1, from: 'server' },
  end: { version: 1, from: 'server' },
  state: { version: 1, from: 'server' },
  map: { version: 1, from: 'server' },
  annotations: { version: 1, from: 'server' },
  telemetry: { version: 1, from: 'server' },
} as const;

export type MessageType = keyof typeof MESSAGES;
export type ClientMessageType = { [K in MessageType]: (typeof MESSAGES)[K]['from'] extends 'client' ? K : never }[MessageType];
export type ServerMessageType = Exclude<MessageType, ClientMessageType>;

/** The version of a message type, as a literal type. */
type V<K extends MessageType> = (typeof MESSAGES)[K]['version'];

// ---------------------------------------------------------------- client → server

/** Control of the replay; needs the session token. */
export type ControlCommand =
  | { op: 'play' }
  | { op: 'pause' }
  | { op: 'seek'; tr: number }
  /** Playback speed factor (0.25 … 20) or 'max' (as fast as the engine goes). */
  | { op: 'speed'; speed: number | 'max' }
  | { op: 'loop'; loop: boolean }
  /** The session-wide selection: the unit or network whose map the pipeline features. */
  | { op: 'select'; target: 'unit' | 'network'; index: number };

export type ControlOp = ControlCommand['op'];

export const SPEED_MIN = 0.25;
export const SPEED_MAX = 20;

export type MapKind = 'unit-t' | 'unit-beta' | 'network';

/**
 * Which map a client watches on the `map` topic: a unit's t or beta map or a network's
 * weights, as the whole volume or a set of slices along one axis. A per-client view choice
 * (read-only); `kind`/`index` left out means the session's current selection.
 */
export interface MapSpec {
  kind?: MapKind;
  index?: number;
  slices?: { axis: 'x' | 'y' | 'z'; indices: number[] };
}

export interface SubscribeMessage {
  type: 'subscribe';
  v: V<'subscribe'>;
  /** Echoed in the reply so a client can match it. */
  id?: number;
  /** Added to the client's subscriptions; each gets its latest update at once (the snapshot). */
  topics: Topic[];
  map?: MapSpec;
}

export interface UnsubscribeMessage {
  type: 'unsubscribe';
  v: V<'unsubscribe'>;
  id?: number;
  topics: Topic[];
}

/** Presents the session token after connecting (instead of `?token=` in the URL). */
export interface AuthMessage {
  type: 'auth';
  v: V<'auth'>;
  id?: number;
  token: string;
}

export interface ControlMessage {
  type: 'control';
  v: V<'control'>;
  id?: number;
  command: ControlCommand;
}

export interface PingMessage {
  type: 'ping';
  v: V<'ping'>;
  id?: number;
}

export type ClientMessage = SubscribeMessage | UnsubscribeMessage | AuthMessage | ControlMessage | PingMessage;

// ---------------------------------------------------------------- server → client

interface Stamped {
  tr: number;
  seq: number;
}

/** SessionInfo without its typed arrays, which follow `hello` as binary session frames. */
export type SessionInfoJson = Omit<SessionInfo, 'maskIndices' | 'background'> & {
  arrays: { maskIndices: { part: 0; length: number }; background: { part: 1; length: number } };
};

export interface HelloMessage extends Stamped {
  type: 'hello';
  v: V<'hello'>;
  protocol: number;
  session: SessionInfoJson;
  /** Topics this server publishes. */
  topics: Topic[];
  /** Topics this connection is subscribed to (from `?topics=`); their snapshot follows. */
  subscribed: Topic[];
  /** True when this connection presented the session token. */
  control: boolean;
  /** The session's current selection (default map of the `map` topic). */
  selection: { target: 'unit' | 'network'; index: number };
  heartbeatMs: number;
}

export interface SubscribedMessage extends Stamped {
  type: 'subscribed';
  v: V<'subscribed'>;
  id?: number;
  topics: Topic[];
  map?: MapSpec;
}

export interface AckMessage extends Stamped {
  type: 'ack';
  v: V<'ack'>;
  id?: number;
  /** What was acknowledged: 'auth', 'unsubscribe' or a control op. */
  what: string;
}

export interface PongMessage extends Stamped {
  type: 'pong';
  v: V<'pong'>;
  id?: number;
}

/** A refused client message; the connection stays open. */
export interface ErrorMessage extends Stamped {
  type: 'error';
  v: V<'error'>;
  id?: number;
  code: ErrorCode;
  message: string;
}

/** A problem in the session itself (pipeline failed); the server stays up. */
export interface FaultMessage extends Stamped {
  type: 'fault';
  v: V<'fault'>;
  code: ErrorCode;
  message: string;
}

/** The session's state stream completed (end of the run without loop). */
export interface EndMessage extends Stamped {
  type: 'end';
  v: V<'end'>;
}

export interface StateMessage extends Stamped {
  type: 'state';
  v: V<'state'>;
  /** Seconds since run start. */
  time: number;
  clock: { playing: boolean; speed: number | 'max'; loop: boolean };
}

/** Describes the binary `map` frame with the same seq that follows it. */
export interface MapMessage extends Stamped {
  type: 'map';
  v: V<'map'>;
  /** The TR the map was computed at (may lag `tr`). */
  mapTr: number;
  kind: MapKind;
  index: number;
  /** Null for the whole volume: frame shape [nz, ny, nx]. */
  slices: { axis: 'x' | 'y' | 'z'; indices: number[] } | null;
  shape: number[];
}

export interface AnnotationsMessage extends Stamped {
  type: 'annotations';
  v: V<'annotations'>;
  /** Non-finite numbers travel as null (JSON has no NaN). */
  rows: AnnotationRow[];
}

export interface TelemetryMessage extends Stamped, Telemetry {
  type: 'telemetry';
  v: V<'telemetry'>;
  /** Connected clients and updates coalesced away so far (server side). */
  clients: number;
  dropped: number;
}

export type ServerMessage =
  | HelloMessage
  | SubscribedMessage
  | AckMessage
  | PongMessage
  | ErrorMessage
  | FaultMessage
  | EndMessage
  | StateMessage
  | MapMessage
  | AnnotationsMessage
  | TelemetryMessage;
