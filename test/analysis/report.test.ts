/**
 * `analyze --out` as a derivatives folder, end to end on the tiny session: a rerun (cold
 * feature cache, then warm) writes the same bytes in every file but report.json, and
 * report.json differs only in its run measurements (TR/s, peak memory, timings); the
 * per-layer stacks hold each unit's own map (desc-<layer>) and the joint GLM's maps of
 * the layer's regressors (desc-glm<layer>), and their sidecars name them; the time series agree with the report; the HTML report is self-contained.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { analyze } from '../../server/commands/analyze.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { openSession } from '../../server/streams/session.ts';
import { analyzeSession, reproducibleReport, RUN_MEASUREMENTS } from '../../server/analysis/analyze.ts';
import { SOFTWARE_COMMIT } from '../../server/analysis/version.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';

let tmp: string;
let sessionFile: string;

async function run(argv: string[]): Promise<number> {
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await analyze.run(argv);
  } finally {
    spy.mockRestore();
  }
}

function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

const argv = (out: string, cache: string) => ['--session', sessionFile, '--frames-per-tr', '2', '--cache-dir', cache, '--quiet', '--units', '0,40,41,130', '--out', out];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-derivatives-'));
  const dir = join(tmp, 'tiny');
  await writeSyntheticSession(createSyntheticSession({ preset: 'tiny', seed: 1 }), dir);
  sessionFile = join(dir, 'session.json');
  const json = JSON.parse(readFileSync(sessionFile, 'utf8'));
  writeFileSync(sessionFile, JSON.stringify({ ...json, subject: '07', run: 2, engine: { window: 6, nulls: 4 } }));
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('analyze --out: derivatives folder', () => {
  it('rerunning gives identical files (report.json: once its run measurements are set aside), cold cache then warm', async () => {
    const out = join(tmp, 'out');
    const cache = join(tmp, 'cache');
    expect(await run(argv(out, cache))).toBe(0);
    const first = files(out);
    const firstReport = JSON.parse(first.get('report.json')!.toString());
    expect(firstReport.timings.cnn_cache_hit).toBe(false);
    expect(await run(argv(out, cache))).toBe(0);
    const second = files(out);
    const secondReport = JSON.parse(second.get('report.json')!.toString());
    expect(secondReport.timings.cnn_cache_hit).toBe(true);
    expect([...second.keys()].sort()).toEqual([...first.keys()].sort());
    for (const [name, bytes] of first) if (name !== 'report.json') expect(bytes.equals(second.get(name)!), name).toBe(true);
    // The measurements are the only keys that may differ, and they are what they say.
    expect(Object.keys(firstReport)).toEqual(Object.keys(secondReport));
    expect(JSON.stringify(reproducibleReport(secondReport))).toBe(JSON.stringify(reproducibleReport(firstReport)));
    for (const r of [firstReport, secondReport]) {
      expect(r.trs_per_second).toBeGreaterThan(0);
      expect(r.trs_per_second).toBeCloseTo(r.summary.trs / r.timings.pipeline_seconds, 6);
      expect(r.peak_rss_mb).toBeGreaterThan(10);
      expect(r.timings.command).toContain('--session');
    }

    const func = 'sub-07/func/sub-07_task-movie_run-2_';
    expect([...first.keys()].sort()).toEqual(
      [
        'dataset_description.json',
        'report.html',
        'report.json',
        ...['annotation_table', 'cka_timeseries', 'coupling_table', 'coupling_timeseries'].flatMap((f) => [`${func}desc-${f}.tsv`, `${func}desc-${f}.json`]),
        ...['fbn_components.json', 'fbn_components.nii.gz'].map((f) => `${func}desc-${f}`),
        ...['s1', 'c1', 's2', 'c2', 'color', 'motion', 'glmc1', 'glmcolor', 'glms1'].flatMap((l) => ['t', 'beta'].flatMap((s) => [`${func}desc-${l}_stat-${s}_statmap.json`, `${func}desc-${l}_stat-${s}_statmap.nii.gz`])),
      ].sort(),
    );
    const report = JSON.parse(first.get('report.json')!.toString());
    expect(report.software).toEqual({ name: 'syncact', version: JSON.parse(readFileSync('package.json', 'utf8')).version, commit: SOFTWARE_COMMIT });
    expect(report.parameters).toMatchObject({ frames_per_tr: 2, units: [0, 40, 41, 130], glm_units: ['s1:0', 'c1:8', 'c1:9', 'color:2'], model_spec: { kind: 'builtin' } });
    expect(report.parameters.engine).toMatchObject({ window: 6, nulls: 4, microtimeBins: 16 });
    expect(report.session.entities).toEqual({ subject: '07', session: null, task: 'movie', run: '2' });
    expect(Object.keys(report).filter((k) => (RUN_MEASUREMENTS as readonly string[]).includes(k)).sort()).toEqual([...RUN_MEASUREMENTS].sort());

    // The joint GLM's c1 stack: its t-maps of the regressors c1:8 and c1:9, named in the sidecar.
    const side = JSON.parse(first.get(`${func}desc-glmc1_stat-t_statmap.json`)!.toString());
    expect(side).toMatchObject({ Layer: 'c1', Model: 'joint GLM', Statistic: 'T', Volumes: ['c1:8', 'c1:9'] });
    // The unit maps' c1 stack: every c1 unit's own t-map.
    const unitSide = JSON.parse(first.get(`${func}desc-c1_stat-t_statmap.json`)!.toString());
    expect(unitSide).toMatchObject({ Layer: 'c1', Model: 'per-unit GLM', Statistic: 'T', Volumes: Array.from({ length: 16 }, (_, c) => `c1:${c}`) });
    const s = await openSession({ session: sessionFile }, { framesPerTr: 2, units: [0, 40, 41, 130], cacheDir: cache });
    try {
      const r = await analyzeSession(s, { annotateEvery: 100, keepSeries: true });
      expect(side.DegreesOfFreedom).toBe(s.engine.degreesOfFreedom());
      expect(unitSide.DegreesOfFreedom).toBe(s.engine.unitMapsDegreesOfFreedom());
      const img = await openNifti(join(out, `${func}desc-glmc1_stat-t_statmap.nii.gz`));
      expect(img.header.dims).toEqual([12, 14, 12, 2]);
      // A stack of maps, not a run: NIFTI_UNITS_MM with no time unit (bits 0x38), pixdim[4] = 1.
      for (const f of [`${func}desc-glmc1_stat-t_statmap.nii.gz`, `${func}desc-c1_stat-beta_statmap.nii.gz`, `${func}desc-fbn_components.nii.gz`]) {
        const raw = gunzipSync(first.get(f)!);
        expect(raw[123] & 0x38).toBe(0);
        expect(raw[123]).toBe(2);
        expect(raw.readFloatLE(92)).toBe(1);
      }
      const c1 = s.glmUnits.filter((u) => s.info.regressors[s.info.units[u].channel]?.startsWith('c1:'));
      expect(c1).toHaveLength(2);
      for (const [j, u] of c1.entries()) {
        const vol = await img.readVolume(j);
        expect(Array.from(s.maskIndices, (g) => vol[g])).toEqual(Array.from(s.engine.tmap(u)));
      }
      await img.close();
      const units = await openNifti(join(out, `${func}desc-c1_stat-t_statmap.nii.gz`));
      expect(units.header.dims).toEqual([12, 14, 12, 16]);
      for (const j of [0, 9, 15]) {
        const vol = await units.readVolume(j);
        expect(Array.from(s.maskIndices, (g) => vol[g])).toEqual(Array.from(s.engine.unitTmap(32 + j)));
      }
      await units.close();

      // CKA series: one row per TR, its last row the report's final CKA.
      const cka = first.get(`${func}desc-cka_timeseries.tsv`)!.toString().trim().split('\n');
      expect(cka[0].split('\t')).toEqual(['tr', 'time', ...s.info.layers.map((l) => l.name)]);
      expect(cka).toHaveLength(1 + 60);
      const last = cka[60].split('\t').slice(2).map(Number);
      s.info.layers.forEach((l, i) => expect(last[i]).toBeCloseTo(report.summary.cka[l.name], 5));
      expect(Array.from(r.final.cka)).toEqual(s.info.layers.map((l) => Math.fround(report.summary.cka[l.name])));
      // Coupling series: a column per coupled pair (none on tiny: 4 nulls cannot reach q ≤ 0.05).
      const coupling = first.get(`${func}desc-coupling_timeseries.tsv`)!.toString().trim().split('\n');
      expect(coupling[0].split('\t')).toEqual(['tr', 'time', ...report.summary.top_pairs.map((p: { unit: string; feature: string }) => `${p.unit}@${p.feature}`)]);
      expect(coupling).toHaveLength(61);
    } finally {
      await s.close();
    }

    const ann = first.get(`${func}desc-annotation_table.tsv`)!.toString().trim().split('\n');
    expect(ann[0]).toBe('layer\tunit\tlabel\tsign\tscore\tp\tq');
    // One row per unit (its own map), in unit order.
    expect(ann).toHaveLength(1 + 141);
    expect(ann.slice(1).map((l) => l.split('\t').slice(0, 2).join(' ')).filter((_, i) => [0, 40, 41, 130].includes(i))).toEqual(['s1 s1:0', 'c1 c1:8', 'c1 c1:9', 'color color:2']);

    // Every TSV column is described in its sidecar (BIDS practice).
    for (const table of ['annotation_table', 'coupling_table', 'cka_timeseries', 'coupling_timeseries']) {
      const header = first.get(`${func}desc-${table}.tsv`)!.toString().split('\n')[0].split('\t');
      const columns = Object.keys(JSON.parse(first.get(`${func}desc-${table}.json`)!.toString()));
      for (const h of header) expect(columns.includes(h) || columns.some((c) => /[<@]/.test(c)), `${table}: ${h}`).toBe(true);
    }

    const desc = JSON.parse(first.get('dataset_description.json')!.toString());
    expect(desc).toMatchObject({ DatasetType: 'derivative', GeneratedBy: [{ Name: 'syncact' }] });
  });

  it('the HTML report is self-contained: inline SVG figures with labelled axes, no scripts or remote resources', async () => {
    const out = join(tmp, 'html');
    expect(await run(argv(out, join(tmp, 'cache')))).toBe(0);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|<link|<iframe|<img|@import|url\(/i);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(5);
    // The summary counts the CNN's units, not the GLM regressors coupled beside them.
    expect(html).toContain('<th>units</th><td>141 CNN units in 6 layers; GLM regressors: s1:0, c1:8, c1:9, color:2</td>');
    for (const label of ['Coupling matrix', 'Which networks each layer maps to', 'CKA', 'Timelines of the strongest pairs', 'time from run start (s)', 'linear CKA (0–1)', 'Pearson r (unitless)', 'sliding r']) expect(html).toContain(label);
    // Every unit × feature cell of the matrix is drawn.
    expect((html.match(/<rect [^>]*><title>[^<]* · [^<]*: r = /g) ?? []).length).toBe(145 * 15);
    // Networks per layer from each unit's own annotation: the bars of a layer count all its
    // units (labelled at q ≤ fdr_q, or grey), and the summed counts agree with report.json.
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(html).toContain('whose own map is annotated with the network at q ≤ 0.05');
    const bars = [...html.matchAll(/<title>([^<→]+) → ([^<]+): (\d+) of (\d+) units<\/title>/g)];
    for (const l of report.summary.layers as { name: string; channels: number }[]) {
      const mine = bars.filter((m) => m[1] === l.name);
      expect(mine.reduce((a, m) => a + Number(m[3]), 0), l.name).toBe(l.channels);
      for (const m of mine) {
        const labelled = report.summary.annotations.filter((a: { unit: string; label: string; q: number }) => a.unit.startsWith(`${l.name}:`) && a.q <= 0.05 && a.label === m[2]).length;
        if (!m[2].startsWith('no network')) expect(Number(m[3]), `${l.name} → ${m[2]}`).toBe(labelled);
      }
    }
  });
});
