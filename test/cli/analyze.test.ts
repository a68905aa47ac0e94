/**
 * `syncact analyze` on the tiny synthetic session written to disk, with the built-in CNN:
 * the folder it writes (report.json fields, truth block, NIfTI stacks equal to the
 * pipeline's maps, coupling table equal to the final state), and that a failed or
 * interrupted run never leaves a folder that looks complete.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { analyze } from '../../server/commands/analyze.ts';
import { commands } from '../../server/commands/index.ts';
import { SyncactError } from '../../server/errors.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { analyzeSession } from '../../server/analysis/analyze.ts';
import { openSession } from '../../server/streams/session.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';

let tmp: string;
let sessionFile: string;
let cacheDir: string;
const common = () => ['--session', sessionFile, '--frames-per-tr', '2', '--cache-dir', cacheDir, '--quiet'];

async function run(argv: string[]): Promise<number> {
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await analyze.run(argv);
  } finally {
    spy.mockRestore();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-analyze-'));
  const dir = join(tmp, 'tiny');
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), dir);
  sessionFile = join(dir, 'session.json');
  // 60 TRs: a short window and a few lagged nulls so significance is defined in the test.
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, engine: { window: 6, nulls: 4, regressors: 4 } }));
  cacheDir = join(tmp, 'cache');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('syncact analyze', () => {
  it('is registered', () => {
    expect(commands).toContain(analyze);
  });

  it('writes report.json (timings, TR/s, peak RSS, truth), NIfTI maps equal to the pipeline, and the coupling table', async () => {
    const out = join(tmp, 'out');
    expect(await run([...common(), '--out', out])).toBe(0);
    const func = (name: string) => join(out, 'func', `task-movie_${name}`);
    expect(existsSync(join(out, 'timings.json'))).toBe(false);
    for (const f of ['report.json', 'report.html', 'dataset_description.json']) expect(existsSync(join(out, f))).toBe(true);
    for (const f of ['desc-glmpca_stat-t_statmap.nii.gz', 'desc-glmpca_stat-beta_statmap.nii.gz', 'desc-s1_stat-t_statmap.nii.gz', 'desc-fbn_components.nii.gz', 'desc-coupling_table.tsv', 'desc-annotation_table.tsv']) expect(existsSync(func(f))).toBe(true);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.summary.trs).toBe(60);
    // Issue 5: TR/s and peak memory at the top level, per-stage timings beside them.
    expect(report.trs_per_second).toBeGreaterThan(0);
    expect(report.peak_rss_mb).toBeGreaterThan(10);
    expect(report.peak_rss_mb).toBeLessThan(1e6);
    for (const stage of ['units', 'volume', 'engine', 'coupling', 'cka', 'state', 'annotation']) expect(report.timings.stages[stage].total_ms).toBeGreaterThanOrEqual(0);
    expect(report.timings.stages.engine.per_tr_ms).toBeCloseTo(report.timings.stages.engine.total_ms / 60, 6);
    expect(report.parameters.model.id).toMatch(/^builtin:hmax-v1:[0-9a-f]{12}$/);
    expect(report.parameters.null_shifts).toBe(4);
    const t = report.truth;
    expect(Object.keys(t)).toEqual(expect.arrayContaining(['sensitivity', 'false_positive_rate', 'map_correlation', 'annotation_accuracy']));
    expect(t.detection.scored_trs).toBeGreaterThan(30);
    expect(t.false_positive_rate).toBeGreaterThanOrEqual(0);
    expect(t.false_positive_rate).toBeLessThanOrEqual(1);
    expect(Number.isFinite(t.map_correlation)).toBe(true);
    expect(t.detection.planted_pairs + t.detection.not_planted_pairs + t.detection.unscored_pairs).toBe(
      report.summary.layers.reduce((a: number, l: { channels: number }) => a + l.channels, 0) * 7 + report.summary.regressors.length * 7,
    );

    // The same session through the pipeline in-process (the cache is warm now): its maps are the files'.
    const s = await openSession({ session: sessionFile }, { framesPerTr: 2, cacheDir });
    try {
      expect(s.cnn.cacheHit).toBe(true);
      const r = await analyzeSession(s, { annotateEvery: 100 });
      const img = await openNifti(func('desc-glmpca_stat-t_statmap.nii.gz'));
      expect(img.header.dims).toEqual([12, 14, 12, s.glmUnits.length]);
      for (const [j, u] of s.glmUnits.entries()) {
        const vol = await img.readVolume(j);
        const want = s.engine.tmap(u);
        const got = Float32Array.from(s.maskIndices, (g) => vol[g]);
        expect(Array.from(got)).toEqual(Array.from(want));
      }
      await img.close();
      // Every CNN unit has its own map by default, one stack per layer: the motion layer's
      // stack holds each motion unit's own t-map (and the betas beside it).
      expect(s.mapUnits).toEqual(Array.from({ length: s.cnn.units }, (_, u) => u));
      const motion = s.mapUnits.filter((u) => s.info.units[u].layer === 'motion');
      expect(motion.length).toBeGreaterThan(1);
      for (const [stat, read] of [['t', (u: number) => s.engine.unitTmap(u)], ['beta', (u: number) => s.engine.unitBetas(u)]] as const) {
        const stack = await openNifti(func(`desc-motion_stat-${stat}_statmap.nii.gz`));
        expect(stack.header.dims).toEqual([12, 14, 12, motion.length]);
        for (const [j, u] of motion.entries()) {
          const vol = await stack.readVolume(j);
          expect(Array.from(s.maskIndices, (g) => vol[g])).toEqual(Array.from(read(u)));
        }
        await stack.close();
      }
      const side = JSON.parse(readFileSync(func('desc-motion_stat-t_statmap.json'), 'utf8'));
      expect(side).toMatchObject({ Layer: 'motion', Model: 'per-unit GLM', Volumes: motion.map((u) => `motion:${s.info.units[u].channel}`), DegreesOfFreedom: 60 - s.engine.extras - 1 });
      const rows = readFileSync(func('desc-coupling_table.tsv'), 'utf8').trim().split('\n');
      const F = s.info.features.length;
      expect(rows).toHaveLength(1 + s.info.units.length * F);
      const header = rows[0].split('\t');
      const rCol = header.indexOf('r');
      for (const j of [0, 17, rows.length - 2]) {
        const cell = rows[j + 1].split('\t')[rCol];
        const want = r.final.coupling[j];
        if (Number.isFinite(want)) expect(Number(cell)).toBeCloseTo(want, 5);
        else expect(cell).toBe('n/a');
      }
      // One annotation per unit (its own map), BH across the units; the regressors' apart.
      const summary = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).summary;
      expect(summary.annotations.length).toBe(s.cnn.units);
      expect(summary.regressor_annotations.length).toBe(s.glmUnits.length);
      const ann = readFileSync(func('desc-annotation_table.tsv'), 'utf8').trim().split('\n');
      expect(ann).toHaveLength(1 + s.cnn.units);
      expect(ann[1].split('\t').slice(0, 2)).toEqual(['s1', 's1:0']);
      expect(r.unitAnnotations.map((a) => a.q)).toEqual(summary.annotations.map((a: { q: number }) => a.q));
    } finally {
      await s.close();
    }
  });

  it('--unit-maps picks the units with their own map (none: the annotation is the regressors\', as before)', async () => {
    const some = join(tmp, 'some-maps');
    expect(await run([...common(), '--out', some, '--max-trs', '20', '--unit-maps', '0,2,140'])).toBe(0);
    const files = readdirSync(join(some, 'func'));
    expect(files.filter((f) => /_stat-t_statmap\.nii\.gz$/.test(f)).sort()).toEqual(['task-movie_desc-glmpca_stat-t_statmap.nii.gz', 'task-movie_desc-motion_stat-t_statmap.nii.gz', 'task-movie_desc-s1_stat-t_statmap.nii.gz']);
    const report = JSON.parse(readFileSync(join(some, 'report.json'), 'utf8'));
    expect(report.parameters.engine.unitMaps).toEqual([0, 2, 140]);
    expect(report.parameters.unit_maps).toEqual(['s1:0', 's1:2', 'motion:8']);
    expect(report.summary.annotations.map((a: { unit: string }) => a.unit)).toEqual(['s1:0', 's1:2', 'motion:8']);
    expect(report.truth.source).toBe('unit_maps');

    const none = join(tmp, 'no-maps');
    expect(await run([...common(), '--out', none, '--max-trs', '20', '--unit-maps', 'none'])).toBe(0);
    expect(readdirSync(join(none, 'func')).filter((f) => /_stat-t_statmap\.nii\.gz$/.test(f))).toEqual(['task-movie_desc-glmpca_stat-t_statmap.nii.gz']);
    const plain = JSON.parse(readFileSync(join(none, 'report.json'), 'utf8'));
    expect(plain.parameters.unit_maps).toEqual([]);
    expect(plain.summary.annotations.map((a: { unit: string }) => a.unit)).toEqual(['pc1', 'pc2', 'pc3', 'pc4']);
    expect(plain.truth.source).toBe('glm_regressors');
    await expect(run([...common(), '--out', join(tmp, 'x'), '--unit-maps', '0,141'])).rejects.toMatchObject({ code: 'SESSION_INVALID', message: expect.stringMatching(/unit 141.*141 units/) });
    await expect(run([...common(), '--out', join(tmp, 'x'), '--unit-maps', 'some'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });

  it('replaces an earlier analysis, but refuses a folder that is not one', async () => {
    const out = join(tmp, 'again');
    expect(await run([...common(), '--out', out, '--max-trs', '20'])).toBe(0);
    const first = statSync(join(out, 'report.json')).mtimeMs;
    expect(await run([...common(), '--out', out, '--max-trs', '20'])).toBe(0);
    expect(statSync(join(out, 'report.json')).mtimeMs).toBeGreaterThanOrEqual(first);
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).summary.trs).toBe(20);

    const precious = join(tmp, 'precious');
    mkdirSync(precious);
    writeFileSync(join(precious, 'notes.txt'), 'mine');
    const err = await run([...common(), '--out', precious, '--max-trs', '20']).catch((e) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect(err.code).toBe('OUTPUT_NOT_WRITABLE');
    expect(err.message).toMatch(/not an earlier analysis/);
    expect(readFileSync(join(precious, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('a run that fails mid-way leaves neither DIR nor DIR.partial', async () => {
    const broken = join(tmp, 'broken');
    cpSync(join(tmp, 'tiny'), broken, { recursive: true });
    const bold = join(broken, 'bold.nii.gz');
    truncateSync(bold, Math.floor(statSync(bold).size * 0.7));
    const out = join(tmp, 'broken-out');
    const err = await run(['--session', join(broken, 'session.json'), '--frames-per-tr', '2', '--cache-dir', cacheDir, '--quiet', '--out', out]).catch((e) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect(err.code).toMatch(/^NIFTI_/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('--model takes an ONNX file with --layers (intermediate layers tapped)', async () => {
    const out = join(tmp, 'onnx');
    const model = join(import.meta.dirname, '../fixtures/models/tiny_cnn.onnx');
    expect(await run([...common(), '--out', out, '--max-trs', '20', '--networks', '0', '--model', model, '--layers', '/relu2/Relu_output_0,logits'])).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.parameters.model.id).toMatch(/^onnx:/);
    expect(report.summary.layers.map((l: { name: string }) => l.name)).toEqual(['/relu2/Relu_output_0', 'logits']);
    expect(report.summary.units).toBe(8 + 5);
    expect(existsSync(join(out, 'func', 'task-movie_desc-fbn_components.nii.gz'))).toBe(false);
    // Its logits are a linear read-out of relu2: the 13 responses have rank 9. Asking for more
    // components than that fits those that carry variance, with a warning, not a refusal.
    const wide = join(tmp, 'tiny', 'session-12-regressors.json');
    writeFileSync(wide, JSON.stringify({ ...JSON.parse(readFileSync(sessionFile, 'utf8')), engine: { window: 6, nulls: 4, regressors: 12 } }));
    const capped = join(tmp, 'onnx-capped');
    expect(await run(['--session', wide, '--frames-per-tr', '2', '--cache-dir', cacheDir, '--quiet', '--out', capped, '--max-trs', '20', '--networks', '0', '--model', model, '--layers', '/relu2/Relu_output_0,logits'])).toBe(0);
    const cappedReport = JSON.parse(readFileSync(join(capped, 'report.json'), 'utf8'));
    expect(cappedReport.summary.regressors).toEqual(Array.from({ length: 9 }, (_, j) => `pc${j + 1}`));
    expect(cappedReport.summary.warnings).toContain('GLM regressors: 9 principal components instead of 12: the 13 unit responses have rank 9');
    await expect(run([...common(), '--out', out, '--model', model])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--layers/) });
  });

  it('usage errors name the option', async () => {
    await expect(run(['--session', sessionFile])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--out/) });
    await expect(run(['--out', join(tmp, 'x')])).rejects.toMatchObject({ code: 'CLI_USAGE', message: expect.stringMatching(/--session/) });
    await expect(run([...common(), '--out', join(tmp, 'x'), '--units', 'a,b'])).rejects.toMatchObject({ code: 'CLI_USAGE' });
  });

  it('Ctrl-C (SIGINT) mid-run: exit code 130, a line saying the folder was not written, no folder', async () => {
    const out = join(tmp, 'interrupted');
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    // SIGINT from inside the child at its 20th engine TR: mid-run however fast the machine is.
    const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/cli/sigkillAtUpdate.ts'), '20', 'analyze', ...common(), '--out', out], {
      cwd: root,
      env: { ...process.env, SYNCACT_TEST_SIGNAL: 'SIGINT' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const [code] = (await once(p, 'exit')) as [number | null];
    expect(code).toBe(130);
    expect(stderr).toContain(`analyze: interrupted; ${out} was not written`);
    expect(stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(existsSync(out)).toBe(false);
  });
});
