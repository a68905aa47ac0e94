/**
 * A private temporary folder for seek snapshots that do not fit the replay's memory budget
 * (server/streams/snapshots.ts): at hcp7t size one engine snapshot is ~600 MB, so keeping
 * even two in memory would take a replay past 2 GiB.
 *
 * Files use the crash-safe state format (snapshotStore.ts: streamed, no concatenated
 * Buffer, checksummed, so a file damaged on disk is refused rather than restored), without
 * fsync: a spilled snapshot only has to outlive the process's own use of it. The folder
 * is created on the first write (`mkdtemp` under `parent`, default os.tmpdir()) and removed
 * by `close()`, or at process exit if the owner never closed it.
 *
 * Failures are REPLAY_SPILL_FAILED naming the folder (disk full, no permission), so a
 * seek never restores a state that was not written completely.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import { readStateFile, stateFileName, writeStateFile, type SnapshotTree, type WriteFaults } from './snapshotStore.ts';

/** Spilled snapshots are not a session's state: this identity marks them as the spill's own. */
const SPILL_IDENTITY = { hash: 'syncact-seek-spill', parts: {} };

export interface SnapshotSpillOptions {
  /** Folder under which the private folder is made (default os.tmpdir()). */
  parent?: string;
  /** Test hooks (a simulated disk full before the rename). */
  faults?: Pick<WriteFaults, 'beforeRename'>;
}

export class SnapshotSpill {
  private readonly parent: string;
  private readonly faults: Pick<WriteFaults, 'beforeRename'>;
  private folder: string | null = null;
  private closed = false;
  private readonly onExit = () => this.removeFolder();

  constructor(o: SnapshotSpillOptions = {}) {
    this.parent = resolve(o.parent ?? tmpdir());
    this.faults = o.faults ?? {};
  }

  /** The private folder (null until the first write, and after close). */
  get dir(): string | null {
    return this.folder;
  }

  /** Writes the snapshot taken after `tr` TRs; returns its file and size in bytes. */
  async write(tr: number, tree: SnapshotTree): Promise<{ file: string; bytes: number }> {
    if (this.closed) throw new SyncactError('REPLAY_SPILL_FAILED', 'the snapshot spill folder is closed', this.parent);
    const dir = this.ensureFolder();
    const file = join(dir, stateFileName(tr));
    try {
      const bytes = await writeStateFile(file, { identity: SPILL_IDENTITY, tr }, tree, { ...this.faults, sync: false });
      return { file, bytes };
    } catch (e) {
      const why = e instanceof SyncactError ? e.message : String((e as Error).message ?? e);
      throw new SyncactError('REPLAY_SPILL_FAILED', `cannot spill the seek snapshot at TR ${tr} to its temporary folder: ${why}`, dir);
    } finally {
      // Closed while writing (the replay was unsubscribed): leave nothing behind.
      if (this.closed) this.removeFolder(dir);
    }
  }

  /** Reads a spilled snapshot back (STATE_CORRUPT / FILE_NOT_FOUND name the file). */
  async read(file: string): Promise<SnapshotTree> {
    return (await readStateFile(file)).state;
  }

  async remove(file: string): Promise<void> {
    await unlink(file).catch(() => {});
  }

  /** Removes the folder and everything in it; later writes fail. */
  close(): void {
    this.closed = true;
    this.removeFolder();
  }

  private ensureFolder(): string {
    if (this.folder !== null) return this.folder;
    try {
      this.folder = mkdtempSync(join(this.parent, 'syncact-seek-'));
    } catch (e) {
      throw new SyncactError('REPLAY_SPILL_FAILED', `cannot create a temporary folder for seek snapshots (${(e as NodeJS.ErrnoException).code})`, this.parent);
    }
    process.once('exit', this.onExit);
    return this.folder;
  }

  private removeFolder(dir = this.folder): void {
    if (dir === null) return;
    rmSync(dir, { recursive: true, force: true });
    if (dir === this.folder) {
      this.folder = null;
      process.off('exit', this.onExit);
    }
  }
}
