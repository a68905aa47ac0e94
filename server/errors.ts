/**
 * Typed errors with stable codes. Every code is listed, with its meaning and what to do,
 * in docs/errors.md; tests assert class, code and message.
 */
export type ErrorCode =
  // NIfTI reading and writing
  | 'NIFTI_NOT_NIFTI'
  | 'NIFTI_TRUNCATED_HEADER'
  | 'NIFTI_TRUNCATED_DATA'
  | 'NIFTI_GZIP_CORRUPT'
  | 'NIFTI_BAD_DIMS'
  | 'NIFTI_BAD_VOX_OFFSET'
  | 'NIFTI_UNSUPPORTED_DATATYPE'
  | 'NIFTI_MISSING_IMG'
  | 'NIFTI_VOLUME_OUT_OF_RANGE'
  | 'NIFTI_BAD_SCALING'
  | 'NIFTI_WRITE_FAILED'
  // masks and atlases
  | 'MASK_GRID_MISMATCH'
  | 'MASK_EMPTY'
  | 'MASK_BAD_IMAGE'
  | 'ATLAS_NO_OVERLAP'
  | 'ATLAS_BAD_LABELS'
  | 'ATLAS_BAD_IMAGE'
  | 'ANATOMICAL_BAD_IMAGE'
  // files, sessions and the command line
  | 'FILE_NOT_FOUND'
  | 'FILE_UNREADABLE'
  | 'SESSION_INVALID'
  | 'CLI_USAGE'
  | 'FFMPEG_NOT_FOUND'
  | 'FFMPEG_FAILED'
  | 'OUTPUT_NOT_WRITABLE'
  | 'SYNTH_BAD_OPTIONS'
  | 'COMPARE_MODELS_INVALID'
  // movie decoding and lockstep replay
  | 'MOVIE_UNREADABLE'
  | 'MOVIE_DECODE_FAILED'
  | 'MOVIE_FRAME_OUT_OF_RANGE'
  | 'REPLAY_TR_MISMATCH'
  | 'REPLAY_NO_TR'
  | 'REPLAY_MISSING_VOLUME'
  | 'REPLAY_VOLUME_MISMATCH'
  | 'REPLAY_BAD_OPTIONS'
  | 'REPLAY_BAD_ACK'
  | 'REPLAY_SPILL_FAILED'
  // wire protocol and live server (protocol/, server/net/)
  | 'PROTOCOL_INVALID_MESSAGE'
  | 'PROTOCOL_UNKNOWN_TYPE'
  | 'PROTOCOL_VERSION_MISMATCH'
  | 'PROTOCOL_BAD_FRAME'
  | 'PROTOCOL_UNAUTHORIZED'
  | 'PROTOCOL_RATE_LIMITED'
  | 'PROTOCOL_CONTROL_FAILED'
  | 'SERVER_ORIGIN_REFUSED'
  | 'SERVER_LISTEN_FAILED'
  | 'SERVER_WORKER_FAILED'
  | 'SESSION_FAULT'
  // dashboard (client/): shown in the page, never thrown on the server
  | 'CLIENT_NOT_CONNECTED'
  | 'CLIENT_BAD_SPEED'
  | 'CLIENT_DECODE'
  // engine
  | 'ENGINE_BAD_INPUT'
  | 'ENGINE_NOT_FITTED'
  | 'ENGINE_SNAPSHOT_MISMATCH'
  | 'ENGINE_WORKER_FAILED'
  // CNN models (TF.js and ONNX loaders)
  | 'CNN_LAYER_NOT_FOUND'
  | 'CNN_MODEL_FILES'
  | 'CNN_MODEL_FORMAT'
  | 'CNN_INPUT_SIZE'
  | 'CNN_BAD_SPEC'
  | 'CNN_BACKEND_FAILED'
  | 'CNN_BAD_FRAMES'
  // feature cache
  | 'FEATURE_CACHE_WRITE_FAILED'
  // crash-safe state snapshots (--state-dir, server/io/snapshotStore.ts)
  | 'STATE_CORRUPT'
  | 'STATE_MISMATCH'
  | 'STATE_WRITE_FAILED';

export class SyncactError extends Error {
  override readonly name = 'SyncactError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The file the problem is about, when there is one. */
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

export function isSyncactError(e: unknown): e is SyncactError {
  return e instanceof SyncactError;
}

/** One line for a terminal: `CODE: message`. */
export function formatError(e: unknown): string {
  if (isSyncactError(e)) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return `INTERNAL: ${e.message}`;
  return `INTERNAL: ${String(e)}`;
}
