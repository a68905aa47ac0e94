import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// server/errors.ts promises that every code is listed in docs/errors.md: hold it to that.
const root = new URL('../../', import.meta.url);
const source = readFileSync(new URL('server/errors.ts', root), 'utf8');
const doc = readFileSync(new URL('docs/errors.md', root), 'utf8');

const union = source.slice(source.indexOf('export type ErrorCode'), source.indexOf('export class SyncactError'));
const codes = [...union.matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]);
const documented = new Set([...doc.matchAll(/^\|\s*`?([A-Z][A-Z0-9_]+)`?\s*\|/gm)].map((m) => m[1]));

describe('docs/errors.md', () => {
  it('lists every code of the ErrorCode union, and no code the union lacks', () => {
    expect(codes.length).toBeGreaterThan(40);
    expect(codes.filter((c) => !documented.has(c))).toEqual([]);
    expect([...documented].filter((c) => !codes.includes(c))).toEqual([]);
  });
});
