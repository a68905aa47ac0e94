/**
 * Label tables: the names of an atlas's integer labels, as the CSV or TSV files that ship
 * beside atlases (`Yeo-7.csv`: `1,1_Visual_Area`; nilearn/BIDS `dseg.tsv`:
 * `index<TAB>name` with a header row).
 *
 * Accepted: comma- or tab-separated (decided by the first data line); an optional header
 * row (a first row whose index field is not an integer), in which the index column is
 * found by name (`index`, `label`, `id`, `value`, `roi`, `key`) and the name column by
 * name (`name`, `label_name`, `labelname`, `region`, `network`, `abbreviation`),
 * falling back to the first two columns; double-quoted fields (`"a, b"`, `""` for a
 * quote); blank lines and lines starting with `#` are skipped. Label 0 is background:
 * a row for it (`0,empty`) is allowed and ignored.
 *
 * Anything else is ATLAS_BAD_LABELS naming the file and line: a non-integer or negative
 * index, a repeated index, an empty name, a table with no labels.
 */
import { readFile } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';

export interface LabelEntry {
  index: number;
  name: string;
}

const INDEX_HEADERS = ['index', 'label', 'id', 'value', 'roi', 'key', 'label_id', 'labelid'];
const NAME_HEADERS = ['name', 'label_name', 'labelname', 'region', 'network', 'abbreviation', 'roi_name'];

/** Splits one line on `delimiter`, honouring double quotes. */
function splitFields(line: string, delimiter: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (ch === delimiter) {
      fields.push(field.trim());
      field = '';
    } else field += ch;
  }
  fields.push(field.trim());
  return fields;
}

const INTEGER = /^[+-]?\d+(\.0*)?$/;

/**
 * Parses a label table's text. Returns the entries for labels ≥ 1, in file order.
 * @param file the path, for error messages
 */
export function parseLabelTable(text: string, file = '<labels>'): LabelEntry[] {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\n|\r/)
    .map((raw, i) => ({ raw, line: i + 1 }))
    .filter(({ raw }) => raw.trim() !== '' && !raw.trimStart().startsWith('#'));
  if (lines.length === 0) throw new SyncactError('ATLAS_BAD_LABELS', 'the label table is empty', file);

  const delimiter = lines[0].raw.includes('\t') ? '\t' : ',';
  let indexCol = 0;
  let nameCol = 1;
  let rows = lines;
  const first = splitFields(lines[0].raw, delimiter);
  if (!INTEGER.test(first[0] ?? '')) {
    const header = first.map((h) => h.toLowerCase());
    const i = header.findIndex((h) => INDEX_HEADERS.includes(h));
    const n = header.findIndex((h, col) => col !== i && NAME_HEADERS.includes(h));
    indexCol = i >= 0 ? i : 0;
    nameCol = n >= 0 ? n : indexCol === 0 ? 1 : 0;
    rows = lines.slice(1);
  }

  const entries: LabelEntry[] = [];
  const seen = new Map<number, number>();
  for (const { raw, line } of rows) {
    const fields = splitFields(raw, delimiter);
    const indexText = fields[indexCol] ?? '';
    if (!INTEGER.test(indexText)) {
      throw new SyncactError('ATLAS_BAD_LABELS', `line ${line}: label index ${JSON.stringify(indexText)} is not an integer`, file);
    }
    const index = Number(indexText);
    if (index < 0 || !Number.isSafeInteger(index)) {
      throw new SyncactError('ATLAS_BAD_LABELS', `line ${line}: label index ${index} is negative or too large`, file);
    }
    const name = fields[nameCol] ?? '';
    if (name === '') throw new SyncactError('ATLAS_BAD_LABELS', `line ${line}: label ${index} has no name`, file);
    const previous = seen.get(index);
    if (previous !== undefined) {
      throw new SyncactError('ATLAS_BAD_LABELS', `line ${line}: label ${index} is already named on line ${previous}`, file);
    }
    seen.set(index, line);
    if (index !== 0) entries.push({ index, name });
  }
  if (entries.length === 0) throw new SyncactError('ATLAS_BAD_LABELS', 'the label table names no label other than 0', file);
  return entries;
}

/** Reads and parses a label table file (see `parseLabelTable`). */
export async function readLabelTable(path: string): Promise<LabelEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SyncactError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the label table (${code ?? e})`, path);
  }
  return parseLabelTable(text, path);
}
