/**
 * What the server needs from a running replay: its static description, the per-TR state
 * stream, the annotation table stream, maps on demand, and a way to steer it. The
 * pipeline (server/streams) implements this; the server only reads and forwards, so it
 * can never hold the pipeline back (a slow client is coalesced inside the server).
 */
import type { Observable } from 'rxjs';
import type { SyncactError } from '../errors.ts';
import type { ControlCommand, MapKind } from '../../protocol/messages.ts';
import type { AnnotationRow, BrainMap, SessionInfo, TrState } from '../../protocol/state.ts';

export interface LiveSession {
  info: SessionInfo;
  /**
   * One value per processed TR (hot: the server subscribes once and keeps the latest).
   * An error is reported to clients as a `fault`; completion as `end`. The server stays up.
   */
  state$: Observable<TrState>;
  /**
   * Problems the session survives (the movie decoder died and frames stop, a volume file
   * vanished in live mode): each is sent to clients as a `fault`; the state stream goes on.
   */
  faults$?: Observable<SyncactError | Error>;
  /** The annotation table whenever it is recomputed. */
  annotations$: Observable<AnnotationRow[]>;
  /** The current map of a unit (t or beta) or a network; undefined when not available yet. */
  map(kind: MapKind, index: number): BrainMap | undefined;
  /**
   * Applies a validated control command; throws (or rejects with) a SyncactError to
   * refuse it. The client's `ack` waits for a returned promise.
   */
  control(command: ControlCommand): void | Promise<void>;
  /**
   * Told the maps clients watch whenever that set changes, for sessions that must fetch
   * maps ahead of time (the server in a worker thread); others need not implement it.
   */
  watch?(views: MapView[]): void;
  /** Emits when maps changed between TRs (fetched late); the server re-sends them. */
  mapsChanged$?: Observable<void>;
}

export interface MapView {
  kind: MapKind;
  index: number;
}
