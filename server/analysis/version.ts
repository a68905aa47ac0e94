/**
 * The software version written into every output (report.json, dataset_description.json),
 * read from package.json so that a release bump cannot leave a stale copy behind.
 */
import { readFileSync } from 'node:fs';

export const SOFTWARE_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
