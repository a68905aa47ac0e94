import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncactError } from '../../server/errors.ts';
import { CouplingEngine } from '../../server/engine/coupling.ts';
import { createRng } from '../../server/engine/random.ts';
import {
  readStateFile,
  sessionIdentity,
  stateFileName,
  StateDir,
  writeStateFile,
  type SnapshotTree,
  type StateArray,
} from '../../server/io/snapshotStore.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const identity = () => sessionIdentity({ text: '{"fmri":"bold.nii.gz"}', parameters: { window: 30, networks: 8 } });

/** Every typed-array kind, odd lengths (so padding is exercised), special values, nested three deep. */
function sampleTree(seed: number): SnapshotTree {
  const rng = createRng(seed);
  const f64 = Float64Array.from({ length: 13 }, () => rng.normal());
  f64[0] = NaN;
  f64[1] = -0;
  f64[2] = Infinity;
  f64[3] = Number.MIN_VALUE;
  const f32 = Float32Array.from({ length: 7 }, () => rng.normal());
  f32[0] = NaN;
  return {
    kind: 'root',
    version: 3,
    scalars: { count: 42, nan: NaN, inf: Infinity, ninf: -Infinity, nzero: -0, tiny: 5e-324, pi: Math.PI },
    arrays: { f64, f32, empty: new Float64Array(0) },
    parts: {
      ints: {
        kind: 'ints',
        version: 1,
        scalars: {},
        arrays: {
          i32: Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, -5, 7]),
          u32: Uint32Array.from([0, 2 ** 32 - 1, 3]),
          u8: Uint8Array.from([0, 255, 1]),
        } as Record<string, StateArray> as SnapshotTree['arrays'],
        parts: {
          deeper: {
            kind: 'narrow',
            version: 2,
            scalars: { x: -1.5 },
            arrays: { i16: Int16Array.from([-32768, 32767, 1]), u16: Uint16Array.from([65535, 0]), i8: Int8Array.from([-128, 127, 0]) } as Record<string, StateArray> as SnapshotTree['arrays'],
          },
        },
      },
      empty: { kind: 'nothing', version: 1, scalars: {}, arrays: {} },
    },
  };
}

/** Deep equality that tells NaN and -0 apart and checks each array's class. */
function expectSameTree(a: SnapshotTree, b: SnapshotTree): void {
  expect(a.kind).toBe(b.kind);
  expect(a.version).toBe(b.version);
  expect(Object.keys(a.scalars).sort()).toEqual(Object.keys(b.scalars).sort());
  for (const k of Object.keys(b.scalars)) expect(Object.is(a.scalars[k], b.scalars[k]), `scalar ${k}`).toBe(true);
  expect(Object.keys(a.arrays).sort()).toEqual(Object.keys(b.arrays).sort());
  for (const k of Object.keys(b.arrays)) {
    const x = a.arrays[k];
    const y = b.arrays[k];
    expect(x.constructor, `array ${k}`).toBe(y.constructor);
    expect(x.length).toBe(y.length);
    // Byte-for-byte: NaN payloads and -0 survive.
    expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `array ${k}`).toBe(true);
  }
  expect(Object.keys(a.parts ?? {}).sort()).toEqual(Object.keys(b.parts ?? {}).sort());
  for (const k of Object.keys(b.parts ?? {})) expectSameTree((a.parts as Record<string, SnapshotTree>)[k], (b.parts as Record<string, SnapshotTree>)[k]);
}

async function expectCode(p: Promise<unknown>, code: string, text?: RegExp): Promise<SyncactError> {
  const e = await p.then(
    () => null,
    (x) => x,
  );
  expect(e).toBeInstanceOf(SyncactError);
  expect((e as SyncactError).code).toBe(code);
  if (text) expect((e as SyncactError).message).toMatch(text);
  return e as SyncactError;
}

describe('state file format', () => {
  it('round-trips every typed-array kind, special scalars and nesting, with meta', async () => {
    const tree = sampleTree(1);
    const id = await identity();
    const file = join(dir, 'x.snap');
    const bytes = await writeStateFile(file, { identity: id, tr: 17, extra: { trs: 17, rows: [{ unit: 1, label: 'visual' }] } }, tree);
    expect((await stat(file)).size).toBe(bytes);
    const back = await readStateFile(file);
    expectSameTree(back.state, tree);
    expect(back.meta.tr).toBe(17);
    expect(back.meta.identity).toEqual(id);
    expect(back.meta.extra).toEqual({ trs: 17, rows: [{ unit: 1, label: 'visual' }] });
    expect(back.meta.software).toMatch(/^\d+\.\d+\.\d+/);
    // Arrays land 8-byte aligned, so every dtype is a view (no copy) on the payload.
    const f64 = back.state.arrays.f64;
    expect(f64.byteOffset % 8).toBe(0);
    expect(await readdir(dir)).toEqual(['x.snap']);
  });

  it('round-trips a real coupling engine snapshot, which restores to the same read-outs', async () => {
    const rng = createRng(5);
    const V = 40;
    const make = () =>
      new CouplingEngine({
        voxels: V,
        units: 4,
        glmUnits: [0, 1],
        extras: 1,
        atlas: { labelOfVoxel: Int32Array.from({ length: V }, (_, v) => v % 3), regions: 3 },
        sliding: { window: 6 },
        dictionary: { atoms: 2, couple: true, alpha: 1, updateEvery: 1, seed: 0 },
        layers: [{ name: 'a', units: [0, 1, 2, 3] }],
        glm: { workers: 0 },
      });
    const a = make();
    for (let k = 0; k < 12; k++) {
      a.update({ units: Float64Array.from({ length: 4 }, () => rng.normal()), extras: Float64Array.of(1), volume: Float32Array.from({ length: V }, () => rng.normal()) });
    }
    const file = join(dir, stateFileName(12));
    await writeStateFile(file, { identity: await identity(), tr: 12 }, a.snapshot());
    const back = await readStateFile(file);
    expectSameTree(back.state, a.snapshot());
    const b = make();
    b.restore(back.state);
    expect(b.count).toBe(12);
    expect(Array.from(b.tmap(1))).toEqual(Array.from(a.tmap(1)));
    a.dispose();
    b.dispose();
  });

  it('streams a payload larger than one I/O chunk (16 MiB) both ways', async () => {
    const big = new Float32Array(5_000_001);
    for (let i = 0; i < big.length; i++) big[i] = i % 977;
    const tree: SnapshotTree = { kind: 'big', version: 1, scalars: {}, arrays: { head: Uint8Array.of(1, 2, 3), big } };
    const file = join(dir, 'big.snap');
    await writeStateFile(file, { identity: await identity(), tr: 1 }, tree);
    expectSameTree((await readStateFile(file)).state, tree);
  });

  it('rejects a non-snapshot tree and unsupported arrays', async () => {
    const bad = { kind: 'x', version: 1, scalars: {}, arrays: { a: [1, 2] } } as unknown as SnapshotTree;
    await expectCode(writeStateFile(join(dir, 'b.snap'), { identity: await identity(), tr: 1 }, bad), 'ENGINE_BAD_INPUT', /state\.arrays\.a/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('corrupt, truncated and foreign files are STATE_CORRUPT', () => {
  async function written(): Promise<{ file: string; buf: Buffer }> {
    const file = join(dir, stateFileName(5));
    await writeStateFile(file, { identity: await identity(), tr: 5 }, sampleTree(2));
    return { file, buf: await readFile(file) };
  }

  it('a flipped payload byte', async () => {
    const { file, buf } = await written();
    buf[buf.length - 9] ^= 0x40;
    await writeFile(file, buf);
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /payload checksum/);
  });

  it('a flipped header byte', async () => {
    const { file, buf } = await written();
    buf[60] ^= 0x01;
    await writeFile(file, buf);
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /header checksum/);
  });

  it('truncated at every region (prefix, header, payload)', async () => {
    const { file, buf } = await written();
    for (const n of [0, 20, 100, buf.length - 1]) {
      await writeFile(file, buf.subarray(0, n));
      const e = await expectCode(readStateFile(file), 'STATE_CORRUPT', /truncated/);
      expect(e.file).toBe(file);
    }
  });

  it('trailing bytes, another magic, another format version', async () => {
    const { file, buf } = await written();
    await writeFile(file, Buffer.concat([buf, Buffer.alloc(8)]));
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /after the payload/);
    const other = Buffer.from(buf);
    other.write('SYNCACTF', 0, 'latin1');
    await writeFile(file, other);
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /bad magic/);
    const v2 = Buffer.from(buf);
    v2.writeUInt32LE(99, 8);
    await writeFile(file, v2);
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /format version 99/);
  });

  it('a text file', async () => {
    const file = join(dir, 'notes.snap');
    await writeFile(file, 'just some notes, not a snapshot at all\n'.repeat(4));
    await expectCode(readStateFile(file), 'STATE_CORRUPT', /bad magic/);
  });

  it('a missing file is FILE_NOT_FOUND', async () => {
    await expectCode(readStateFile(join(dir, 'nope.snap')), 'FILE_NOT_FOUND');
  });
});

describe('StateDir', () => {
  const tree = (k: number): SnapshotTree => ({ kind: 't', version: 1, scalars: { k }, arrays: { v: Float64Array.from({ length: 1000 }, (_, i) => i * k) } });

  it('keeps the newest 2 (configurable) and latest() returns the newest', async () => {
    const id = await identity();
    const two = new StateDir(dir);
    for (const k of [10, 20, 30]) await two.save({ identity: id, tr: k }, tree(k));
    expect((await readdir(dir)).sort()).toEqual([stateFileName(20), stateFileName(30)]);
    const l = await two.latest(id);
    expect(l?.meta.tr).toBe(30);
    expect(l?.state.scalars.k).toBe(30);
    const three = new StateDir(dir, { keep: 3 });
    for (const k of [40, 50]) await three.save({ identity: id, tr: k }, tree(k));
    expect((await readdir(dir)).sort()).toEqual([30, 40, 50].map(stateFileName));
    expect(() => new StateDir(dir, { keep: 0 })).toThrow(SyncactError);
  });

  it('a save at an earlier TR (after a seek back) drops the later snapshots', async () => {
    const id = await identity();
    const s = new StateDir(dir, { keep: 3 });
    for (const k of [10, 20, 30]) await s.save({ identity: id, tr: k }, tree(k));
    await s.save({ identity: id, tr: 15 }, tree(15));
    expect((await readdir(dir)).sort()).toEqual([10, 15].map(stateFileName));
  });

  it('an empty or absent folder has no latest', async () => {
    expect(await new StateDir(dir).latest()).toBeNull();
    expect(await new StateDir(join(dir, 'absent')).latest()).toBeNull();
  });

  it('skips a corrupt or truncated newest snapshot, with the reason logged, for the previous one', async () => {
    const id = await identity();
    const log: string[] = [];
    const s = new StateDir(dir, { log: (m) => log.push(m) });
    await s.save({ identity: id, tr: 10 }, tree(10));
    await s.save({ identity: id, tr: 20 }, tree(20));
    const newest = join(dir, stateFileName(20));
    await truncate(newest, (await stat(newest)).size - 100);
    expect((await s.latest(id))?.meta.tr).toBe(10);
    expect(log.join('\n')).toMatch(/state-00000020\.snap.*truncated/);
    // Both broken: nothing to resume from.
    const older = join(dir, stateFileName(10));
    const buf = await readFile(older);
    buf[buf.length - 1] ^= 0xff;
    await writeFile(older, buf);
    expect(await s.latest(id)).toBeNull();
    expect(log.join('\n')).toMatch(/state-00000010\.snap.*checksum/);
  });

  it('a crash between write and rename leaves the previous snapshot usable, and the next save clears the partial', async () => {
    const id = await identity();
    await new StateDir(dir).save({ identity: id, tr: 10 }, tree(10));
    // The crash: the partial is complete and synced, the process dies before the rename.
    const crashing = new StateDir(dir, {
      faults: {
        beforeRename: () => {
          throw new Error('simulated crash');
        },
      },
    });
    await expect(crashing.save({ identity: id, tr: 20 }, tree(20))).rejects.toThrow('simulated crash');
    // A real crash leaves the partial behind (the error path above removes it): recreate one, torn.
    await writeFile(join(dir, stateFileName(20) + '.partial'), Buffer.from('SYNCACTS torn'));
    // And one from an earlier run that had got further (another name than the next write's).
    await writeFile(join(dir, stateFileName(40) + '.partial'), Buffer.alloc(64));
    const log: string[] = [];
    const s = new StateDir(dir, { log: (m) => log.push(m) });
    const l = await s.latest(id);
    expect(l?.meta.tr).toBe(10);
    expect(Array.from(l?.state.arrays.v ?? [])).toEqual(Array.from(tree(10).arrays.v));
    await s.save({ identity: id, tr: 20 }, tree(20));
    expect((await readdir(dir)).sort()).toEqual([10, 20].map(stateFileName));
    expect(log.join('\n')).toMatch(/state-00000040\.snap\.partial/);
  });

  it('a snapshot of another session is refused with STATE_MISMATCH naming the difference', async () => {
    await new StateDir(dir).save({ identity: await identity(), tr: 10 }, tree(10));
    const other = await sessionIdentity({ text: '{"fmri":"bold.nii.gz"}', parameters: { window: 30, networks: 4 } });
    const e = await expectCode(new StateDir(dir).latest(other), 'STATE_MISMATCH', /parameters\.networks: 8 in the snapshot, 4 now/);
    expect(e.file).toBe(join(dir, stateFileName(10)));
    const otherText = await sessionIdentity({ text: '{"fmri":"other.nii.gz"}', parameters: { window: 30, networks: 8 } });
    await expectCode(new StateDir(dir).latest(otherText), 'STATE_MISMATCH', /text differs/);
  });

  it('the identity follows input files (size, mtime) and is independent of key order', async () => {
    const f = join(dir, 'bold.nii');
    await writeFile(f, Buffer.alloc(100));
    const a = await sessionIdentity({ text: 't', files: [f], parameters: { a: 1, b: { c: 2, d: 3 } } });
    const b = await sessionIdentity({ text: 't', files: [f], parameters: { b: { d: 3, c: 2 }, a: 1 } });
    expect(b.hash).toBe(a.hash);
    await writeFile(f, Buffer.alloc(101));
    const c = await sessionIdentity({ text: 't', files: [f], parameters: { a: 1, b: { c: 2, d: 3 } } });
    expect(c.hash).not.toBe(a.hash);
  });

  it('an unwritable folder is STATE_WRITE_FAILED', async () => {
    const file = join(dir, 'plain');
    await writeFile(file, 'x');
    await expectCode(new StateDir(join(file, 'sub')).save({ identity: await identity(), tr: 1 }, tree(1)), 'STATE_WRITE_FAILED');
  });
});
