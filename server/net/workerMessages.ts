/**
 * Messages between the pipeline's thread and the live server's worker thread
 * (startServerInWorker.ts ↔ serverWorker.ts). Internal to server/net: not part of the
 * wire protocol. Errors cross as {code, message} because structured cloning drops classes.
 */
import type { ErrorCode } from '../errors.ts';
import type { ControlCommand } from '../../protocol/messages.ts';
import type { AnnotationRow, BrainMap, TrState } from '../../protocol/state.ts';
import type { MapView } from './liveSession.ts';
import type { ServerStats } from './server.ts';

export interface PlainError {
  code: ErrorCode;
  message: string;
}

/** Pipeline thread → worker. */
export type ToWorker =
  /** A TR and the maps the worker's clients watch, computed at that TR. */
  | { type: 'tr'; state: TrState; maps: BrainMap[] }
  /** Maps fetched between TRs (a newly watched view). */
  | { type: 'maps'; maps: BrainMap[] }
  | { type: 'annotations'; rows: AnnotationRow[] }
  | { type: 'fault'; error: PlainError }
  | { type: 'failed'; error: PlainError }
  | { type: 'end' }
  | { type: 'controlResult'; id: number; error?: PlainError }
  | { type: 'close' };

/** Worker → pipeline thread. */
export type FromWorker =
  | { type: 'ready'; url: string; wsUrl: string; host: string; port: number; token: string }
  | { type: 'startFailed'; error: PlainError }
  | { type: 'watch'; views: MapView[] }
  | { type: 'control'; id: number; command: ControlCommand }
  | { type: 'stats'; stats: ServerStats }
  | { type: 'closed' };
