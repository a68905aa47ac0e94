/**
 * Crash-safe state on disk (`--state-dir`): a replay's whole state (a tree of estimator
 * snapshots) written every N TRs, so that a killed run can resume from the last one and
 * end exactly where an uninterrupted run ends (docs/state-dir.md).
 *
 * One file per snapshot, `state-<TR, 8 digits>.snap`, where TR is the number of TRs the
 * state has processed (resume continues at that TR). The format:
 *
 * ```
 * 0   8 B   magic "SYNCACTS"
 * 8   u32   format version (little-endian)
 * 12  u32   header length H
 * 16  32 B  sha256 of the header bytes
 * 48  H B   JSON header: meta (session identity, TR, software, extra), byte order,
 *           payload length and sha256, the tree (kinds, versions, scalars, and for each
 *           array its dtype, length and payload offset)
 * ..  pad   zeros up to a multiple of 8
 * P   ...   payload: the arrays, each at an 8-byte-aligned offset from P, little-endian
 * ```
 *
 * Both checksums together cover every byte, so a torn, truncated or bit-flipped file is
 * recognised and never restored (STATE_CORRUPT when named, skipped by `latest`).
 *
 * Writing is atomic: the file is streamed to `NAME.partial` through a file handle (a
 * dictionary-learning state is ~120 MB at hcp7t size: no concatenated Buffer), fsynced,
 * renamed over NAME, and the folder is fsynced so the rename itself survives a power
 * loss. Only then are older snapshots deleted (the newest `keep`, default 2, stay), so at
 * every instant the folder holds at least one complete snapshot once one was written.
 * A crash before the rename leaves a `.partial` that readers ignore and the next write
 * removes.
 *
 * A snapshot belongs to one session: its identity (`sessionIdentity`: session.json's
 * content, the input files' sizes and modification times, the engine parameters) is
 * stored with it, and a state for another identity is refused with STATE_MISMATCH,
 * naming what differs, rather than restored into an engine it does not describe.
 *
 * One writer per folder: two runs sharing a state folder would delete each other's files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readdir, rename, stat, unlink, mkdir, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import type { EstimatorSnapshot } from '../engine/estimator.ts';

export const STATE_MAGIC = 'SYNCACTS';
export const STATE_FORMAT_VERSION = 1;
const PREFIX_BYTES = 48;
const FILE_RE = /^state-(\d+)\.snap$/;
/** Bytes per read/write call when streaming the payload (bounded memory per call). */
const CHUNK = 16 * 2 ** 20;

/** An estimator snapshot whose sub-estimators' snapshots nest under `parts` (CouplingSnapshot's shape). */
export interface SnapshotTree extends EstimatorSnapshot {
  parts?: Record<string, SnapshotTree>;
}

/** Array kinds a snapshot may hold (estimator.ts's SnapshotArray, and the other integer widths). */
export type StateArray = Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

const DTYPES = {
  float64: Float64Array,
  float32: Float32Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
} as const;
type Dtype = keyof typeof DTYPES;

/** Who a state belongs to: a hash, and the parts it was made from (to say what differs). */
export interface SessionIdentity {
  /** sha256 (hex) of the canonical JSON of `parts`. */
  hash: string;
  parts: Record<string, unknown>;
}

/** What is stored beside the tree. */
export interface StateMeta {
  identity: SessionIdentity;
  /** TRs the state has processed: a resume continues at this TR. */
  tr: number;
  /** Free JSON the caller restores with the tree (run counters, the last annotation rows). */
  extra?: unknown;
}

/** A snapshot read back. */
export interface StoredState {
  file: string;
  meta: StateMeta & {
    /** syncact version that wrote it. */
    software: string;
    /** ISO time it was written (informational). */
    written: string;
  };
  state: SnapshotTree;
  /** File size in bytes. */
  bytes: number;
}

interface ArrayDesc {
  dtype: Dtype;
  length: number;
  /** Byte offset from the start of the payload (a multiple of 8). */
  offset: number;
}

interface NodeDesc {
  kind: string;
  version: number;
  /** Numbers, with NaN, ±Infinity and -0 as strings (JSON has no literal for them). */
  scalars: Record<string, number | string>;
  arrays: Record<string, ArrayDesc>;
  parts?: Record<string, NodeDesc>;
}

interface Header {
  format: 'syncact-state';
  meta: StoredState['meta'];
  byteOrder: 'little';
  payloadBytes: number;
  payloadSha256: string;
  tree: NodeDesc;
}

let cachedVersion: string | null = null;
/** package.json's version (read once). */
export function softwareVersion(): string {
  if (cachedVersion === null) {
    try {
      cachedVersion = String(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version ?? 'unknown');
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}

/**
 * The identity of a session for its state files: `text` (e.g. session.json's content),
 * each input file's absolute path, size and modification time (hashing a multi-GB BOLD
 * run at every start would cost more than the resume saves; a file rewritten in place
 * changes its mtime), and the parameters that shape the engine (JSON).
 */
export async function sessionIdentity(o: { text?: string | null; files?: (string | null | undefined)[]; parameters?: unknown }): Promise<SessionIdentity> {
  const files: Record<string, { size: number; mtimeMs: number } | 'missing'> = {};
  for (const f of o.files ?? []) {
    if (!f) continue;
    const p = resolve(f);
    try {
      const s = await stat(p);
      files[p] = { size: s.size, mtimeMs: s.mtimeMs };
    } catch {
      files[p] = 'missing';
    }
  }
  const parts: Record<string, unknown> = {
    text: o.text == null ? null : createHash('sha256').update(o.text).digest('hex'),
    files,
    parameters: o.parameters ?? null,
  };
  return { hash: createHash('sha256').update(canonicalJson(parts)).digest('hex'), parts };
}

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]])) : x,
  );
}

/** The file name of the state after `tr` TRs. */
export function stateFileName(tr: number): string {
  return `state-${String(tr).padStart(8, '0')}.snap`;
}

function corrupt(file: string, why: string): SyncactError {
  return new SyncactError('STATE_CORRUPT', `not a usable state snapshot: ${why}`, file);
}

function dtypeOf(a: unknown): Dtype | null {
  for (const [name, ctor] of Object.entries(DTYPES)) if (a instanceof ctor) return name as Dtype;
  return null;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

function encodeScalar(x: number): number | string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return x;
}

function decodeScalar(x: unknown): number | null {
  if (typeof x === 'number') return x;
  if (x === 'NaN') return NaN;
  if (x === 'Infinity') return Infinity;
  if (x === '-Infinity') return -Infinity;
  if (x === '-0') return -0;
  return null;
}

/** Lays the tree's arrays out in the payload: descriptors plus the arrays in payload order. */
function layout(tree: SnapshotTree, at: string): { desc: NodeDesc; arrays: StateArray[]; bytes: number } {
  const arrays: StateArray[] = [];
  let bytes = 0;
  const walk = (node: SnapshotTree, path: string): NodeDesc => {
    if (!node || typeof node.kind !== 'string' || !Number.isFinite(node.version) || typeof node.scalars !== 'object' || typeof node.arrays !== 'object') {
      throw new SyncactError('ENGINE_BAD_INPUT', `state snapshot: ${path} is not an estimator snapshot (kind, version, scalars, arrays)`);
    }
    const scalars: NodeDesc['scalars'] = {};
    for (const [k, v] of Object.entries(node.scalars)) {
      if (typeof v !== 'number') throw new SyncactError('ENGINE_BAD_INPUT', `state snapshot: ${path}.scalars.${k} is not a number`);
      scalars[k] = encodeScalar(v);
    }
    const descs: NodeDesc['arrays'] = {};
    for (const [k, a] of Object.entries(node.arrays)) {
      const dtype = dtypeOf(a);
      if (dtype === null) throw new SyncactError('ENGINE_BAD_INPUT', `state snapshot: ${path}.arrays.${k} is not a supported typed array`);
      descs[k] = { dtype, length: a.length, offset: bytes };
      arrays.push(a as StateArray);
      bytes = align8(bytes + a.byteLength);
    }
    const desc: NodeDesc = { kind: node.kind, version: node.version, scalars, arrays: descs };
    if (node.parts) {
      desc.parts = {};
      for (const [k, p] of Object.entries(node.parts)) desc.parts[k] = walk(p, `${path}.parts.${k}`);
    }
    return desc;
  };
  const desc = walk(tree, at);
  return { desc, arrays, bytes };
}

function bytesOf(a: StateArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, Math.min(CHUNK, buf.length - done));
    done += bytesWritten;
  }
}

/** fsync of a folder, so a rename in it is durable (not possible on every platform: then skipped). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Windows cannot open a folder for fsync; the rename is still atomic there.
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Test hooks: simulate a crash at a point of the write. */
export interface WriteFaults {
  /** Called after the `.partial` file is complete and synced, before the rename. */
  beforeRename?: () => void | Promise<void>;
  /**
   * fsync the file and its folder (default true). Seek snapshots spilled to a temporary
   * folder (server/io/snapshotSpill.ts) skip it: they need not survive a power loss.
   */
  sync?: boolean;
}

/**
 * Writes a state file atomically (see the file comment). Returns its size in bytes.
 * The arrays must not change until the promise settles (the hash is computed first, then
 * they are streamed). Failures are STATE_WRITE_FAILED and leave nothing at `file`.
 */
export async function writeStateFile(file: string, meta: StateMeta, tree: SnapshotTree, faults: WriteFaults = {}): Promise<number> {
  if (endianness() !== 'LE') throw new SyncactError('STATE_WRITE_FAILED', 'state snapshots are little-endian; this machine is big-endian', file);
  if (!Number.isInteger(meta.tr) || meta.tr < 0) throw new SyncactError('ENGINE_BAD_INPUT', `state snapshot: tr must be a non-negative integer, got ${meta.tr}`);
  const { desc, arrays, bytes } = layout(tree, 'state');
  const hash = createHash('sha256');
  const pads = arrays.map((a) => align8(a.byteLength) - a.byteLength);
  const zeros = Buffer.alloc(8);
  arrays.forEach((a, i) => {
    hash.update(bytesOf(a));
    hash.update(zeros.subarray(0, pads[i]));
  });
  const header: Header = {
    format: 'syncact-state',
    meta: { identity: meta.identity, tr: meta.tr, ...(meta.extra === undefined ? {} : { extra: meta.extra }), software: softwareVersion(), written: new Date().toISOString() },
    byteOrder: 'little',
    payloadBytes: bytes,
    payloadSha256: hash.digest('hex'),
    tree: desc,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(STATE_MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(STATE_FORMAT_VERSION, 8);
  prefix.writeUInt32LE(json.length, 12);
  createHash('sha256').update(json).digest().copy(prefix, 16);
  const start = align8(PREFIX_BYTES + json.length);

  const target = resolve(file);
  const partial = `${target}.partial`;
  try {
    const fh = await open(partial, 'w');
    try {
      await writeAll(fh, prefix);
      await writeAll(fh, json);
      await writeAll(fh, zeros.subarray(0, start - PREFIX_BYTES - json.length));
      for (let i = 0; i < arrays.length; i++) {
        await writeAll(fh, bytesOf(arrays[i]));
        if (pads[i]) await writeAll(fh, zeros.subarray(0, pads[i]));
      }
      if (faults.sync ?? true) await fh.sync();
    } finally {
      await fh.close();
    }
    await faults.beforeRename?.();
    await rename(partial, target);
    if (faults.sync ?? true) await syncDir(join(target, '..'));
  } catch (e) {
    await unlink(partial).catch(() => {});
    if (e instanceof SyncactError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new SyncactError('STATE_WRITE_FAILED', `cannot write the state snapshot (${code})`, target);
  }
  return start + bytes;
}

async function readExactly(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, Math.min(CHUNK, into.length - done), position + done);
    if (bytesRead === 0) throw corrupt(file, `truncated: ended ${into.length - done} bytes early`);
    done += bytesRead;
  }
}

/**
 * Reads and checks a state file: magic, format version, header checksum, size, payload
 * checksum, and every descriptor. Anything wrong is STATE_CORRUPT with the reason;
 * a missing file is FILE_NOT_FOUND.
 */
export async function readStateFile(file: string): Promise<StoredState> {
  const path = resolve(file);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the state snapshot (${code})`, path);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < PREFIX_BYTES) throw corrupt(path, `truncated: ${size} bytes, shorter than the ${PREFIX_BYTES}-byte prefix`);
    const prefix = Buffer.alloc(PREFIX_BYTES);
    await readExactly(fh, prefix, 0, path);
    if (prefix.toString('latin1', 0, 8) !== STATE_MAGIC) throw corrupt(path, `bad magic (not a ${STATE_MAGIC} file)`);
    const version = prefix.readUInt32LE(8);
    if (version !== STATE_FORMAT_VERSION) throw corrupt(path, `format version ${version}, this syncact reads ${STATE_FORMAT_VERSION}`);
    const headerBytes = prefix.readUInt32LE(12);
    if (PREFIX_BYTES + headerBytes > size) throw corrupt(path, `truncated: the header needs ${PREFIX_BYTES + headerBytes} bytes, the file has ${size}`);
    const json = Buffer.alloc(headerBytes);
    await readExactly(fh, json, PREFIX_BYTES, path);
    if (!createHash('sha256').update(json).digest().equals(prefix.subarray(16, 48))) throw corrupt(path, 'header checksum mismatch');
    let header: Header;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch {
      throw corrupt(path, 'header is not JSON');
    }
    if (header.format !== 'syncact-state' || header.byteOrder !== 'little' || !header.meta || !header.tree) throw corrupt(path, 'header lacks format, byte order, meta or tree');
    if (endianness() !== 'LE') throw corrupt(path, 'written little-endian; this machine is big-endian');
    const start = align8(PREFIX_BYTES + headerBytes);
    const payloadBytes = header.payloadBytes;
    if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0) throw corrupt(path, `bad payload length ${payloadBytes}`);
    if (size !== start + payloadBytes) {
      throw corrupt(path, size < start + payloadBytes ? `truncated: ${size} bytes, the header says ${start + payloadBytes}` : `${size - start - payloadBytes} bytes after the payload`);
    }
    const payload = new ArrayBuffer(payloadBytes);
    const view = new Uint8Array(payload);
    const hash = createHash('sha256');
    for (let at = 0; at < payloadBytes; at += CHUNK) {
      const part = view.subarray(at, Math.min(payloadBytes, at + CHUNK));
      await readExactly(fh, part, start + at, path);
      hash.update(part);
    }
    if (hash.digest('hex') !== header.payloadSha256) throw corrupt(path, 'payload checksum mismatch');
    const state = build(header.tree, payload, path, 'state');
    if (!Number.isInteger(header.meta.tr) || header.meta.tr < 0) throw corrupt(path, `bad TR ${header.meta.tr}`);
    if (!header.meta.identity || typeof header.meta.identity.hash !== 'string') throw corrupt(path, 'no session identity');
    return { file: path, meta: header.meta, state, bytes: size };
  } finally {
    await fh.close();
  }
}

/** The tree from its descriptors, arrays as views on the payload (checked to lie inside it). */
function build(d: NodeDesc, payload: ArrayBuffer, file: string, path: string): SnapshotTree {
  if (!d || typeof d.kind !== 'string' || typeof d.version !== 'number' || typeof d.scalars !== 'object' || typeof d.arrays !== 'object') {
    throw corrupt(file, `${path} is not a snapshot node`);
  }
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(d.scalars)) {
    const x = decodeScalar(v);
    if (x === null) throw corrupt(file, `${path}.scalars.${k} is not a number`);
    scalars[k] = x;
  }
  const arrays: Record<string, StateArray> = {};
  for (const [k, a] of Object.entries(d.arrays)) {
    const ctor = DTYPES[a?.dtype as Dtype];
    if (!ctor) throw corrupt(file, `${path}.arrays.${k} has unknown dtype ${a?.dtype}`);
    const nbytes = a.length * ctor.BYTES_PER_ELEMENT;
    if (!Number.isSafeInteger(a.length) || a.length < 0 || !Number.isSafeInteger(a.offset) || a.offset % 8 !== 0 || a.offset < 0 || a.offset + nbytes > payload.byteLength) {
      throw corrupt(file, `${path}.arrays.${k} lies outside the payload`);
    }
    arrays[k] = new ctor(payload, a.offset, a.length);
  }
  const node: SnapshotTree = { kind: d.kind, version: d.version, scalars, arrays: arrays as EstimatorSnapshot['arrays'] };
  if (d.parts) {
    node.parts = {};
    for (const [k, p] of Object.entries(d.parts)) node.parts[k] = build(p, payload, file, `${path}.parts.${k}`);
  }
  return node;
}

/** The first differing identity part, as `key: stored vs current`, for the mismatch message. */
function identityDifference(stored: Record<string, unknown>, current: Record<string, unknown>): string {
  const flat = (v: unknown, prefix: string, out: Map<string, string>) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) flat(x, prefix ? `${prefix}.${k}` : k, out);
    else out.set(prefix, JSON.stringify(v));
    return out;
  };
  const a = flat(stored, '', new Map());
  const b = flat(current, '', new Map());
  const diffs: string[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k) ?? 'absent';
    const y = b.get(k) ?? 'absent';
    // Long values (lists of names, hashes of file contents) are named, not printed.
    if (x !== y) diffs.push(x.length + y.length <= 80 ? `${k}: ${x} in the snapshot, ${y} now` : `${k} differs`);
  }
  if (diffs.length === 0) return 'identity hashes differ';
  return diffs.length > 4 ? `${diffs.slice(0, 4).join('; ')}; and ${diffs.length - 4} more` : diffs.join('; ');
}

/** Throws STATE_MISMATCH unless the stored state belongs to `identity`. */
export function checkIdentity(stored: StoredState, identity: SessionIdentity): void {
  if (stored.meta.identity.hash === identity.hash) return;
  throw new SyncactError(
    'STATE_MISMATCH',
    `the state snapshot was written for another session or other parameters (${identityDifference(stored.meta.identity.parts ?? {}, identity.parts)}); use another --state-dir or remove it`,
    stored.file,
  );
}

export interface StateDirOptions {
  /** Complete snapshots kept (the newest by TR, the one just written included); default 2. */
  keep?: number;
  /** Where skipped files are reported (a corrupt newest snapshot, a leftover partial). */
  log?: (message: string) => void;
  /** Test hooks (see WriteFaults). */
  faults?: WriteFaults;
}

/** A folder of state snapshots for one session (see the file comment). */
export class StateDir {
  readonly dir: string;
  readonly keep: number;
  private readonly log: (message: string) => void;
  private readonly faults: WriteFaults;

  constructor(dir: string, o: StateDirOptions = {}) {
    this.dir = resolve(dir);
    this.keep = o.keep ?? 2;
    if (!Number.isInteger(this.keep) || this.keep < 1) throw new SyncactError('CLI_USAGE', `state snapshots kept must be a positive integer, got ${o.keep}`);
    this.log = o.log ?? (() => {});
    this.faults = o.faults ?? {};
  }

  /** Complete-looking snapshot files (by name), newest TR first. */
  async list(): Promise<{ tr: number; file: string }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new SyncactError('FILE_UNREADABLE', `cannot list the state folder (${(e as NodeJS.ErrnoException).code})`, this.dir);
    }
    return names
      .map((n) => ({ m: FILE_RE.exec(n), n }))
      .filter((x) => x.m !== null)
      .map((x) => ({ tr: Number((x.m as RegExpExecArray)[1]), file: join(this.dir, x.n) }))
      .sort((a, b) => b.tr - a.tr);
  }

  /**
   * Writes the state after `meta.tr` TRs atomically, then deletes what is no longer kept:
   * snapshots past this TR (a run that went further before a seek back, or whose newest
   * file was corrupt: the state now continues from here), all but the `keep` newest at
   * or before it, and partial files left by a crash. Returns the file written.
   */
  async save(meta: StateMeta, tree: SnapshotTree): Promise<string> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw new SyncactError('STATE_WRITE_FAILED', `cannot create the state folder (${(e as NodeJS.ErrnoException).code})`, this.dir);
    }
    const file = join(this.dir, stateFileName(meta.tr));
    await writeStateFile(file, meta, tree, this.faults);
    const kept = new Set((await this.list()).filter((x) => x.tr <= meta.tr).slice(0, this.keep).map((x) => x.file));
    for (const x of await this.list()) if (!kept.has(x.file)) await unlink(x.file).catch(() => {});
    for (const n of await readdir(this.dir)) {
      if (n.startsWith('state-') && n.endsWith('.snap.partial')) {
        this.log(`state: removing ${n} (left by an interrupted write)`);
        await unlink(join(this.dir, n)).catch(() => {});
      }
    }
    return file;
  }

  /**
   * The newest valid snapshot, or null when there is none. Corrupt or truncated files are
   * skipped with the reason logged (the previous one is used). With `identity`, the state
   * found must belong to it (else STATE_MISMATCH: the folder is another session's).
   */
  async latest(identity?: SessionIdentity): Promise<StoredState | null> {
    for (const { file } of await this.list()) {
      let stored: StoredState;
      try {
        stored = await readStateFile(file);
      } catch (e) {
        if (e instanceof SyncactError && (e.code === 'STATE_CORRUPT' || e.code === 'FILE_NOT_FOUND' || e.code === 'FILE_UNREADABLE')) {
          this.log(`state: skipping ${e.message}`);
          continue;
        }
        throw e;
      }
      if (identity) checkIdentity(stored, identity);
      return stored;
    }
    return null;
  }
}
