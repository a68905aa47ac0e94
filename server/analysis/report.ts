/**
 * Writing an analysis folder (`syncact analyze --out DIR`), atomically: everything is
 * written into DIR.partial, and DIR.partial is renamed to DIR only when the last file
 * (report.json) is in place. A run that fails or is interrupted leaves at most a
 * DIR.partial (removed on the next run), never a DIR that looks complete. An existing DIR
 * is replaced only when it is an earlier analysis (it holds a report.json) or is empty;
 * any other folder is refused, so a typo in --out cannot delete someone's data.
 *
 * The folder is a BIDS-derivatives-like dataset (names in derivatives.ts):
 *   dataset_description.json   Name, BIDSVersion, DatasetType "derivative", GeneratedBy
 *   report.json                summary, every parameter, software version, truth (deterministic)
 *   timings.json               wall times, TR/s, peak memory, feature-cache hit (varies run to run)
 *   report.html                the figures (htmlReport.ts), self-contained
 *   [sub-S/[ses-X/]]func/<prefix>_…
 *     desc-<layer>_stat-t_statmap.nii.gz (+ .json)     4D, one t-map per GLM regressor of the layer
 *     desc-<layer>_stat-beta_statmap.nii.gz (+ .json)  their betas
 *     desc-fbn_components.nii.gz (+ .json)             the learned networks (dictionary atoms)
 *     desc-annotation_table.tsv      per GLM regressor: layer, unit, label, sign, score, p, q
 *     desc-coupling_table.tsv        per (unit, feature): final r, p, q, significant, fraction
 *     desc-coupling_timeseries.tsv   sliding r over TRs, one column per coupled pair
 *     desc-cka_timeseries.tsv        CKA per layer over TRs
 * Maps are 0 outside the mask. Re-running with the same inputs and parameters writes the
 * same bytes in every file but timings.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnnotationRow, SessionInfo, TrState } from '../../protocol/state.ts';
import type { BidsEntities } from '../config.ts';
import type { CouplingEngine } from '../engine/coupling.ts';
import { unmask } from '../io/mask.ts';
import { writeNifti } from '../io/nifti/write.ts';
import type { AnalysisSeries, CoupledPair } from './analyze.ts';
import { jsonNumbers, writeFolderAtomically } from './atomicFolder.ts';
import { datasetDescription, layerLabels, runFiles, runLocation, sidecarName } from './derivatives.ts';
import { htmlReport } from './htmlReport.ts';
import { annotationTable, ckaSeriesTable, couplingSeriesTable, couplingTable, regressorLayer } from './tables.ts';
import { SOFTWARE_VERSION } from './version.ts';

/** The files at the top of every analysis folder. */
export const ANALYSIS_FILES = {
  description: 'dataset_description.json',
  report: 'report.json',
  timings: 'timings.json',
  html: 'report.html',
} as const;

export interface AnalysisContent {
  info: SessionInfo;
  engine: CouplingEngine;
  /** BIDS entities of the run (where its files go and how they are named). */
  entities: BidsEntities;
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
  /** Per-TR coupling and CKA (analyzeSession with keepSeries). */
  series: AnalysisSeries;
  /** The coupled pairs (columns of the coupling time series), strongest first. */
  pairs: CoupledPair[];
  /** report.json's content (written last): deterministic. */
  report: Record<string, unknown>;
  /** timings.json's content: what varies from run to run. */
  timings: Record<string, unknown>;
}

/** Writes the analysis folder; returns the files written (absolute paths). */
export async function writeAnalysis(outDir: string, c: AnalysisContent): Promise<string[]> {
  return writeFolderAtomically(outDir, ANALYSIS_FILES.report, 'analysis', async (partial) => {
    const written: string[] = [];
    const { info, engine } = c;
    const { folder, prefix } = runLocation(c.entities);
    const names = runFiles(prefix);
    await mkdir(join(partial, folder), { recursive: true });
    const put = async (name: string, text: string) => {
      await writeFile(join(partial, name), text);
      written.push(name);
    };
    const putJson = (name: string, value: unknown) => put(name, JSON.stringify(value, jsonNumbers, 2) + '\n');
    const nVox = info.grid.dims[0] * info.grid.dims[1] * info.grid.dims[2];
    const spatial = { affine: info.grid.affine, tr: info.tr, gzipLevel: 1 };
    const stack = (maps: Float32Array[]) => {
      const out = new Float32Array(nVox * maps.length);
      maps.forEach((m, j) => out.set(unmask(m, info.maskIndices, nVox), j * nVox));
      return out;
    };
    const unitName = (u: number) => (info.units[u].layer === 'pca' || info.units[u].layer === 'regressor' ? info.regressors[info.units[u].channel] : `${info.units[u].layer}:${info.units[u].channel}`);

    await putJson(ANALYSIS_FILES.description, datasetDescription(SOFTWARE_VERSION, info.name));

    // GLM maps, one 4D stack per layer of the regressors (components form the layer "pca").
    const byLayer = new Map<string, number[]>();
    for (const u of c.glmUnits) byLayer.set(regressorLayer(info, u), [...(byLayer.get(regressorLayer(info, u)) ?? []), u]);
    const layers = [...byLayer.keys()];
    const labels = layerLabels(layers);
    const dof = engine.degreesOfFreedom();
    for (const [l, layer] of layers.entries()) {
      const units = byLayer.get(layer) as number[];
      const volumes = units.map(unitName);
      for (const stat of ['t', 'beta'] as const) {
        const name = `${folder}/${names.statmap(labels[l], stat)}`;
        await writeNifti(join(partial, name), stack(units.map((u) => (stat === 't' ? engine.tmap(u) : engine.betas(u)))), {
          ...spatial,
          dims: [...info.grid.dims, units.length],
          description: `syncact GLM ${stat === 't' ? 't-maps' : 'betas'} ${layer}: ${volumes.join(' ')}`.slice(0, 79),
          intent: stat === 't' ? { code: 3, name: 'ttest', p1: dof } : { code: 1001, name: 'beta' }, // NIFTI_INTENT_TTEST (p1 = dof) / ESTIMATE
        });
        written.push(name);
        await putJson(`${folder}/${sidecarName(names.statmap(labels[l], stat))}`, {
          Layer: layer,
          Statistic: stat === 't' ? 'T' : 'beta',
          Volumes: volumes,
          ...(stat === 't' ? { DegreesOfFreedom: dof } : {}),
          Description: `voxelwise GLM (recursive least squares) ${stat === 't' ? 't statistic' : 'coefficient'} of each regressor's HRF-convolved response; 0 outside the mask`,
        });
      }
    }
    if (c.networks > 0) {
      const name = `${folder}/${names.networks}`;
      await writeNifti(join(partial, name), stack(Array.from({ length: c.networks }, (_, j) => engine.atom(j))), {
        ...spatial,
        dims: [...info.grid.dims, c.networks],
        description: 'syncact learned networks (dictionary atoms)',
        intent: { code: 1001, name: 'networks' },
      });
      written.push(name);
      const atomNames = info.features.filter((f) => /^network_\d+$/.test(f));
      await putJson(`${folder}/${sidecarName(names.networks)}`, {
        Volumes: atomNames.length === c.networks ? atomNames : Array.from({ length: c.networks }, (_, j) => `network_${j + 1}`),
        Description: 'functional brain networks learned by online dictionary learning (one volume per atom); 0 outside the mask',
      });
    }
    await put(`${folder}/${names.annotation}`, annotationTable(info, c.annotations));
    await put(`${folder}/${names.coupling}`, couplingTable(info, c.final, c.finalP, c.fractionSignificant));
    await put(`${folder}/${names.couplingSeries}`, couplingSeriesTable(c.series, info.tr, c.pairs));
    await put(`${folder}/${names.ckaSeries}`, ckaSeriesTable(c.series, info.tr, info.layers.map((x) => x.name)));
    await put(ANALYSIS_FILES.html, htmlReport(c));
    await putJson(ANALYSIS_FILES.timings, c.timings);
    await putJson(ANALYSIS_FILES.report, c.report);
    return written;
  });
}
