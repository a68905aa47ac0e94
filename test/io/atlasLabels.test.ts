import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLabelTable, readLabelTable } from '../../server/io/labels.ts';
import { SyncactError } from '../../server/errors.ts';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SyncactError);
    return (e as SyncactError).code;
  }
  return undefined;
}

describe('parseLabelTable', () => {
  it('reads the neuroparc CSV format (no header, 0 = background ignored)', () => {
    const text = '0,empty\n1,1_Visual_Area\n2,2_Somatomotor_Area\n3,3_Dorsal_Area\n';
    expect(parseLabelTable(text)).toEqual([
      { index: 1, name: '1_Visual_Area' },
      { index: 2, name: '2_Somatomotor_Area' },
      { index: 3, name: '3_Dorsal_Area' },
    ]);
  });

  it('reads a BIDS dseg.tsv with a header, finding the columns by name', () => {
    const text = 'name\tindex\tcolor\nVisual\t1\t#ff0000\nDefault\t7\t#00ff00\n';
    expect(parseLabelTable(text)).toEqual([
      { index: 1, name: 'Visual' },
      { index: 7, name: 'Default' },
    ]);
  });

  it('handles a BOM, CRLF, comments, blank lines, quotes and float-written indices', () => {
    const text = '\uFEFF# Yeo networks\r\nindex,name\r\n\r\n1.0,"Salience, ventral"\r\n2,"He said ""hi"""\r\n';
    expect(parseLabelTable(text)).toEqual([
      { index: 1, name: 'Salience, ventral' },
      { index: 2, name: 'He said "hi"' },
    ]);
  });

  it('rejects malformed tables with ATLAS_BAD_LABELS naming file and line', () => {
    expect(codeOf(() => parseLabelTable(''))).toBe('ATLAS_BAD_LABELS');
    expect(codeOf(() => parseLabelTable('0,empty\n'))).toBe('ATLAS_BAD_LABELS');
    expect(codeOf(() => parseLabelTable('1,a\n1.5,b\n'))).toBe('ATLAS_BAD_LABELS');
    expect(codeOf(() => parseLabelTable('1,a\n-2,b\n'))).toBe('ATLAS_BAD_LABELS');
    expect(codeOf(() => parseLabelTable('1,a\n2,\n'))).toBe('ATLAS_BAD_LABELS');
    expect(() => parseLabelTable('1,a\n2,b\n1,c\n', 'yeo.csv')).toThrow('yeo.csv: line 3: label 1 is already named on line 1');
    expect(() => parseLabelTable('index,name\n1,a\nseven,b\n', 't.csv')).toThrow(/t\.csv: line 3: label index "seven" is not an integer/);
  });
});

describe('readLabelTable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncact-labels-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file; a missing file is FILE_NOT_FOUND', async () => {
    const path = join(dir, 'Yeo-2.csv');
    writeFileSync(path, '0,empty\n1,A\n2,B\n');
    expect(await readLabelTable(path)).toEqual([
      { index: 1, name: 'A' },
      { index: 2, name: 'B' },
    ]);
    await expect(readLabelTable(join(dir, 'nope.csv'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
