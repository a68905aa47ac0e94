/**
 * Writing an analysis folder (`syncact analyze --out DIR`), atomically (atomicFolder.ts:
 * written into DIR.partial, renamed when report.json, the last file, is in place; an
 * existing DIR is replaced only if it is an earlier analysis).
 *
 * The folder is a BIDS-derivatives-like dataset (names in derivatives.ts):
 *   dataset_description.json   Name, BIDSVersion, DatasetType "derivative", GeneratedBy
 *   report.json                summary, every parameter, software version, truth, and the run's
 *                              measurements (trs_per_second, peak_rss_mb, timings: vary run to run)
 *   report.html                the figures (htmlReport.ts), self-contained
 *   [sub-S/[ses-X/]]func/<prefix>_…
 *     desc-<layer>_stat-t_statmap.nii.gz (+ .json)     4D, one t-map per mapped unit of the CNN
 *                                                      layer: the unit's own GLM (unitMaps.ts)
 *     desc-<layer>_stat-beta_statmap.nii.gz (+ .json)  their betas
 *     desc-glm<layer>_stat-{t,beta}_statmap.nii.gz (+ .json)  the joint GLM's regressors of
 *                                                      the layer ("glmpca": the components)
 *     desc-fbn_components.nii.gz (+ .json)             the learned networks (dictionary atoms)
 *     desc-annotation_table.tsv      per mapped unit (per GLM regressor without unit maps):
 *                                    layer, unit, label, sign, score, p, q
 *     desc-coupling_table.tsv        per (unit, feature): final r, p, q, significant, fraction
 *     desc-coupling_timeseries.tsv   sliding r over TRs, one column per coupled pair
 *     desc-cka_timeseries.tsv        CKA per layer over TRs
 *     (each TSV with a .json sidecar describing its columns, as BIDS does)
 * Maps are 0 outside the mask. Re-running with the same inputs and parameters writes the
 * same bytes in every file, and the same report.json once its run measurements are set
 * aside (RUN_MEASUREMENTS in analyze.ts).
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
  html: 'report.html',
} as const;

export interface AnalysisContent {
  info: SessionInfo;
  engine: CouplingEngine;
  /** BIDS entities of the run (where its files go and how they are named). */
  entities: BidsEntities;
  /** Units whose joint-GLM maps are written (indices among the units). */
  glmUnits: number[];
  /** Units with their own map (session.mapUnits), written per CNN layer. */
  mapUnits: number[];
  /** Learned networks (atoms) to write; 0 for none. */
  networks: number;
  final: TrState;
  /** Final coupling p-values (U×F), NaN where undefined. */
  finalP: Float64Array;
  /** Per pair, the fraction of scored TRs it was significant (NaN when none were scored). */
  fractionSignificant: Float64Array;
  annotations: AnnotationRow[];
  /** Final annotation of the mapped units' own maps (empty without unit maps or atlas). */
  unitAnnotations: AnnotationRow[];
  /** BH level (engine fdr_q): an annotation with q at or below it labels its unit. */
  fdrQ: number;
  /** Per-TR coupling and CKA (analyzeSession with keepSeries). */
  series: AnalysisSeries;
  /** The coupled pairs (columns of the coupling time series), strongest first. */
  pairs: CoupledPair[];
  /** report.json's content (written last). */
  report: Record<string, unknown>;
}

/** BIDS-style column descriptions of the tables (sidecar JSON beside each TSV). */
const ANNOTATION_COLUMNS = {
  layer: { Description: 'CNN layer of the unit (with unit maps "none": of the GLM regressor, "pca" for principal components of all units)' },
  unit: { Description: 'the unit, "layer:channel" (with unit maps "none": the regressor, or the component name pc1, …)' },
  label: { Description: 'the atlas network whose map best matches the unit\'s synchronized t-map (its own GLM; largest |spatial r| inside the mask)' },
  sign: { Description: 'sign of that spatial correlation (-1: the map is the network\'s negative)' },
  score: { Description: '|spatial Pearson r| between the t-map and the network map' },
  p: {
    Description:
      "p-value of the score, from the best |r| over all networks of null maps: for units with their own map, the maps of mapped units' responses circularly shifted over the run (temporal null, annotation_nulls; tests coupling); for GLM regressors (unit maps \"none\"), smoothness-matched Gaussian random fields (spatial null; tests map structure only)",
  },
  q: { Description: 'Benjamini-Hochberg q across the annotated units' },
};

const COUPLING_COLUMNS = {
  unit: { Description: '"layer:channel", or a regressor\'s name' },
  layer: { Description: 'CNN layer ("pca"/"regressor" for GLM regressors)' },
  channel: { Description: 'channel index within the layer' },
  feature: { Description: 'brain feature: an atlas region, "global", or a learned network (network_k)' },
  r: { Description: 'sliding-window Pearson r at the last TR' },
  p: { Description: 'p-value at the last TR from the pooled lagged nulls' },
  q: { Description: 'Benjamini-Hochberg q at the last TR across all unit-feature pairs' },
  significant: { Description: '1 if q <= fdr_q at the last TR' },
  fraction_significant: { Description: 'fraction of the scored TRs (every null ready) at which the pair was significant' },
};

function seriesColumns(name: string, description: string): Record<string, unknown> {
  return {
    tr: { Description: 'TR index (0-based)' },
    time: { Description: 'time from the start of the run', Units: 's' },
    [name]: { Description: description },
  };
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
    // Every NIfTI written here is a stack of maps, not a run: no TR on the 4th axis (volumes: 'maps').
    const spatial = { affine: info.grid.affine, gzipLevel: 1, volumes: 'maps' as const };
    const stack = (maps: Float32Array[]) => {
      const out = new Float32Array(nVox * maps.length);
      maps.forEach((m, j) => out.set(unmask(m, info.maskIndices, nVox), j * nVox));
      return out;
    };
    const unitName = (u: number) => (info.units[u].layer === 'pca' || info.units[u].layer === 'regressor' ? info.regressors[info.units[u].channel] : `${info.units[u].layer}:${info.units[u].channel}`);

    await putJson(ANALYSIS_FILES.description, datasetDescription(SOFTWARE_VERSION, info.name));

    /** A layer's t and beta stacks and their sidecars: each unit's own map, or the joint GLM's regressors. */
    const putStack = async (tName: string, betaName: string, layer: string, units: number[], model: 'unit' | 'glm', dof: number) => {
      const volumes = units.map(unitName);
      const read = (u: number, stat: 't' | 'beta') =>
        model === 'unit' ? (stat === 't' ? engine.unitTmap(u) : engine.unitBetas(u)) : stat === 't' ? engine.tmap(u) : engine.betas(u);
      for (const stat of ['t', 'beta'] as const) {
        const file = stat === 't' ? tName : betaName;
        const name = `${folder}/${file}`;
        const what = model === 'unit' ? 'unit maps' : 'GLM';
        await writeNifti(join(partial, name), stack(units.map((u) => read(u, stat))), {
          ...spatial,
          dims: [...info.grid.dims, units.length],
          description: `syncact ${what} ${stat === 't' ? 't-maps' : 'betas'} ${layer}: ${volumes.join(' ')}`.slice(0, 79),
          intent: stat === 't' ? { code: 3, name: 'ttest', p1: dof } : { code: 1001, name: 'beta' }, // NIFTI_INTENT_TTEST (p1 = dof) / ESTIMATE
        });
        written.push(name);
        await putJson(`${folder}/${sidecarName(file)}`, {
          Layer: layer,
          Model: model === 'unit' ? 'per-unit GLM' : 'joint GLM',
          Statistic: stat === 't' ? 'T' : 'beta',
          Volumes: volumes,
          ...(stat === 't' ? { DegreesOfFreedom: dof } : {}),
          Description:
            model === 'unit'
              ? `each unit's synchronized map: the voxelwise GLM of the BOLD on that unit's HRF-convolved response alone, with intercept and drift (${stat === 't' ? 't statistic' : 'coefficient'}); 0 outside the mask`
              : `joint voxelwise GLM of all regressors (recursive least squares): ${stat === 't' ? 't statistic' : 'coefficient'} of each regressor's HRF-convolved response; 0 outside the mask`,
        });
      }
    };

    // Unit maps: one 4D stack per CNN layer of its mapped units, each unit's own GLM.
    const cnnLayers = info.layers.map((l) => l.name);
    const cnnLabels = layerLabels(cnnLayers);
    const mapped = cnnLayers.map((layer) => c.mapUnits.filter((u) => info.units[u].layer === layer));
    const unitDof = engine.unitMapsDegreesOfFreedom();
    for (const [l, layer] of cnnLayers.entries()) {
      if (mapped[l].length === 0) continue;
      await putStack(names.statmap(cnnLabels[l], 't'), names.statmap(cnnLabels[l], 'beta'), layer, mapped[l], 'unit', unitDof);
    }
    // The joint GLM's maps, one stack per layer of its regressors (components: "pca"), under desc-glm<layer>.
    const byLayer = new Map<string, number[]>();
    for (const u of c.glmUnits) byLayer.set(regressorLayer(info, u), [...(byLayer.get(regressorLayer(info, u)) ?? []), u]);
    const layers = [...byLayer.keys()];
    const labels = layerLabels(layers);
    const dof = engine.degreesOfFreedom();
    for (const [l, layer] of layers.entries()) {
      await putStack(names.statmap(`glm${labels[l]}`, 't'), names.statmap(`glm${labels[l]}`, 'beta'), layer, byLayer.get(layer) as number[], 'glm', dof);
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
    const tables: [string, string, Record<string, unknown>][] = [
      [names.annotation, annotationTable(info, c.mapUnits.length > 0 ? c.unitAnnotations : c.annotations), ANNOTATION_COLUMNS],
      [names.coupling, couplingTable(info, c.final, c.finalP, c.fractionSignificant), COUPLING_COLUMNS],
      [names.couplingSeries, couplingSeriesTable(c.series, info.tr, c.pairs), seriesColumns('unit@feature', 'sliding-window Pearson r of the unit\'s HRF-convolved response with the brain feature over the last `window` TRs (a coupled pair: significant in at least half of the scored TRs)')],
      [names.ckaSeries, ckaSeriesTable(c.series, info.tr, info.layers.map((x) => x.name)), seriesColumns('<layer>', 'linear CKA between the layer\'s unit responses and the brain features over the TRs so far (0–1)')],
    ];
    for (const [name, text, columns] of tables) {
      await put(`${folder}/${name}`, text);
      await putJson(`${folder}/${name.replace(/\.tsv$/, '.json')}`, columns);
    }
    await put(ANALYSIS_FILES.html, htmlReport(c));
    await putJson(ANALYSIS_FILES.report, c.report);
    return written;
  });
}
