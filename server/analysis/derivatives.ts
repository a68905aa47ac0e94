/**
 * Names and places of the files in an analysis folder, laid out like a BIDS derivatives
 * dataset (BIDS 1.9, "BIDS Derivatives"): dataset_description.json at the top, and the
 * run's files under sub-<subject>/[ses-<session>/]func/ with the entities of the run in
 * their names, e.g. sub-01/func/sub-01_task-movie_run-1_desc-c1_stat-t_statmap.nii.gz.
 * A session that names no subject puts them in func/ with the same names, less the sub-.
 *
 * CNN layer names ("/features/features.3/Relu_output_0") are not BIDS labels; each layer
 * gets one (its letters and digits, numbered when two would collide), and the sidecar
 * JSON of its maps carries the real name. Pure: no file system here.
 */
import type { BidsEntities } from '../config.ts';

/** What a derivatives folder declares about itself (BIDS's dataset_description.json). */
export function datasetDescription(version: string, sourceName: string): Record<string, unknown> {
  return {
    Name: `syncact analysis of ${sourceName}`,
    BIDSVersion: '1.9.0',
    DatasetType: 'derivative',
    GeneratedBy: [{ Name: 'syncact', Version: version, Description: 'Sync-ACT: CNN units coupled to brain networks by synchronized activations' }],
  };
}

/** The folder (relative to the analysis folder) and file-name prefix of the run's files. */
export function runLocation(e: BidsEntities): { folder: string; prefix: string } {
  const parts: string[] = [];
  const folder: string[] = [];
  if (e.subject !== null) {
    parts.push(`sub-${e.subject}`);
    folder.push(`sub-${e.subject}`);
  }
  if (e.session !== null) {
    parts.push(`ses-${e.session}`);
    if (e.subject !== null) folder.push(`ses-${e.session}`);
  }
  parts.push(`task-${e.task}`);
  if (e.run !== null) parts.push(`run-${e.run}`);
  folder.push('func');
  return { folder: folder.join('/'), prefix: parts.join('_') };
}

/**
 * A BIDS label (letters and digits) for each layer name, unique within the list: the
 * name's letters and digits ("/relu2/Relu_output_0" → "relu2Reluoutput0"), "layer" when
 * none are left, and a number appended on a collision ("conv1", "conv1n2").
 */
export function layerLabels(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    const base = name.replace(/[^A-Za-z0-9]/g, '') || 'layer';
    let label = base;
    for (let n = 2; used.has(label); n++) label = `${base}n${n}`;
    used.add(label);
    return label;
  });
}

/** The run's file names (without folder), each from the prefix. */
export function runFiles(prefix: string) {
  return {
    statmap: (layerLabel: string, stat: 't' | 'beta') => `${prefix}_desc-${layerLabel}_stat-${stat}_statmap.nii.gz`,
    networks: `${prefix}_desc-fbn_components.nii.gz`,
    annotation: `${prefix}_desc-annotation_table.tsv`,
    coupling: `${prefix}_desc-coupling_table.tsv`,
    couplingSeries: `${prefix}_desc-coupling_timeseries.tsv`,
    ckaSeries: `${prefix}_desc-cka_timeseries.tsv`,
  };
}

/** A NIfTI file's sidecar: the same name with .json for .nii.gz. */
export function sidecarName(nifti: string): string {
  return nifti.replace(/\.nii(\.gz)?$/, '.json');
}
