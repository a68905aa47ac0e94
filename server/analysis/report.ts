/**
 * Writing an analysis folder (`syncact analyze --out DIR`), atomically: everything is
 * written into DIR.partial, and DIR.partial is renamed to DIR only when the last file
 * (report.json) is in place. A run that fails or is interrupted leaves at most a
 * DIR.partial (removed on the next run), never a DIR that looks complete. An existing DIR
 * is replaced only when it is an earlier analysis (it holds a report.json) or is empty;
 * any other folder is refused, so a typo in --out cannot delete someone's data.
 *
 * The folder:
 *   report.json            summary, parameters, timings, trs_per_second, peak_rss_mb, truth
 *   glm_t.nii.gz           4D: one t-map per GLM regressor (0 outside the mask)
 *   glm_beta.nii.gz        4D: one beta map per GLM regressor
 *   networks.nii.gz        4D: the learned networks (dictionary atoms), when any
 *   coupling.tsv           per (unit, feature): final r, p, q, significant, fraction of TRs significant
 *   annotation.tsv         per GLM regressor: best template, sign, score, p, q
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AnnotationRow, SessionInfo, TrState } from '../../protocol/state.ts';
import { SyncactError } from '../errors.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { unmask } from '../io/mask.ts';
import { writeNifti } from '../io/nifti/write.ts';

export const ANALYSIS_FILES = {
  report: 'report.json',
  tmaps: 'glm_t.nii.gz',
  betas: 'glm_beta.nii.gz',
  networks: 'networks.nii.gz',
  coupling: 'coupling.tsv',
  annotation: 'annotation.tsv',
} as const;

export interface AnalysisContent {
  info: SessionInfo;
  engine: CouplingEngine;
  /** Units whose GLM maps are written (indices among the units). */
  glmUnits: number[];
  /** Learned networks (atoms) to write; 0 for none. */
  networks: number;
  final: TrState;
  /** Final coupling p-values (U×F), NaN where undefined. */
  finalP: Float64Array;
  /** Per pair, the fraction of scored TRs it was significant (NaN when none were scored). */
  fractionSignificant: Float64Array;
  annotations: AnnotationRow[];
  /** report.json's content (written last). */
  report: Record<string, unknown>;
}

/** Writes the analysis folder; returns the files written (absolute paths). */
export async function writeAnalysis(outDir: string, c: AnalysisContent): Promise<string[]> {
  const dir = resolve(outDir);
  const partial = `${dir}.partial`;
  await checkReplaceable(dir);
  const fail = (e: unknown, file: string): never => {
    if (e instanceof SyncactError) throw e;
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `cannot write the analysis (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  };
  try {
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
  } catch (e) {
    fail(e, partial);
  }
  const written: string[] = [];
  try {
    const { info, engine } = c;
    const nVox = info.grid.dims[0] * info.grid.dims[1] * info.grid.dims[2];
    const spatial = { affine: info.grid.affine, tr: info.tr, gzipLevel: 1 };
    const stack = (maps: Float32Array[]) => {
      const out = new Float32Array(nVox * maps.length);
      maps.forEach((m, j) => out.set(unmask(m, info.maskIndices, nVox), j * nVox));
      return out;
    };
    const file = (name: string) => join(partial, name);
    if (c.glmUnits.length > 0) {
      const dims = [...info.grid.dims, c.glmUnits.length];
      await writeNifti(file(ANALYSIS_FILES.tmaps), stack(c.glmUnits.map((u) => engine.tmap(u))), {
        ...spatial,
        dims,
        description: `syncact GLM t-maps: ${info.regressors.join(' ')}`.slice(0, 79),
        intent: { code: 3, name: 'ttest', p1: engine.degreesOfFreedom() }, // NIFTI_INTENT_TTEST, p1 = dof
      });
      await writeNifti(file(ANALYSIS_FILES.betas), stack(c.glmUnits.map((u) => engine.betas(u))), {
        ...spatial,
        dims,
        description: `syncact GLM betas: ${info.regressors.join(' ')}`.slice(0, 79),
        intent: { code: 1001, name: 'beta' }, // NIFTI_INTENT_ESTIMATE
      });
      written.push(ANALYSIS_FILES.tmaps, ANALYSIS_FILES.betas);
    }
    if (c.networks > 0) {
      await writeNifti(file(ANALYSIS_FILES.networks), stack(Array.from({ length: c.networks }, (_, j) => engine.atom(j))), {
        ...spatial,
        dims: [...info.grid.dims, c.networks],
        description: 'syncact learned networks (dictionary atoms)',
        intent: { code: 1001, name: 'networks' },
      });
      written.push(ANALYSIS_FILES.networks);
    }
    await writeText(file(ANALYSIS_FILES.coupling), couplingTsv(c));
    await writeText(file(ANALYSIS_FILES.annotation), annotationTsv(c));
    written.push(ANALYSIS_FILES.coupling, ANALYSIS_FILES.annotation);
    await writeText(file(ANALYSIS_FILES.report), JSON.stringify(c.report, jsonNumbers, 2) + '\n');
    written.push(ANALYSIS_FILES.report);
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    fail(e, partial);
  }
  // Swap in: an earlier analysis moves aside first, so DIR is never half old, half new.
  const aside = `${dir}.old-${process.pid}`;
  try {
    const had = await exists(dir);
    if (had) await rename(dir, aside);
    await rename(partial, dir);
    if (had) await rm(aside, { recursive: true, force: true });
  } catch (e) {
    fail(e, dir);
  }
  return written.map((n) => join(dir, n));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function checkReplaceable(dir: string): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch {
    return;
  }
  if (!s.isDirectory()) throw new SyncactError('OUTPUT_NOT_WRITABLE', 'the output path exists and is not a folder', dir);
  const names = await readdir(dir);
  if (names.length > 0 && !names.includes(ANALYSIS_FILES.report)) {
    throw new SyncactError('OUTPUT_NOT_WRITABLE', `the output folder exists and is not an earlier analysis (no ${ANALYSIS_FILES.report}); give a new or empty folder`, dir);
  }
}

async function writeText(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}

/** NaN and ±Infinity are not JSON: written as null. */
function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}

function num(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(6))) : 'n/a';
}

function unitLabel(info: SessionInfo, i: number): { name: string; layer: string; channel: number } {
  const u = info.units[i];
  const name = u.layer === 'pca' || u.layer === 'regressor' ? info.regressors[u.channel] : `${u.layer}:${u.channel}`;
  return { name, layer: u.layer, channel: u.channel };
}

function couplingTsv(c: AnalysisContent): string {
  const { info, final } = c;
  const F = info.features.length;
  const rows = ['unit\tlayer\tchannel\tfeature\tr\tp\tq\tsignificant\tfraction_significant'];
  for (let i = 0; i < info.units.length; i++) {
    const u = unitLabel(info, i);
    for (let f = 0; f < F; f++) {
      const j = i * F + f;
      rows.push(
        [u.name, u.layer, u.channel, info.features[f], num(final.coupling[j]), num(c.finalP[j]), num(final.couplingQ[j]), final.significant[j] ?? 0, num(c.fractionSignificant[j])].join('\t'),
      );
    }
  }
  return rows.join('\n') + '\n';
}

function annotationTsv(c: AnalysisContent): string {
  const rows = ['unit\tlabel\tsign\tscore\tp\tq'];
  for (const a of c.annotations) rows.push([unitLabel(c.info, a.unit).name, a.label, a.sign, num(a.score), num(a.p), num(a.q)].join('\t'));
  return rows.join('\n') + '\n';
}
