/**
 * The user's guide cannot quietly drift from the code: the JSON examples in docs/ parse
 * with the real parsers, and every session.json and engine field of server/config.ts has
 * a row in docs/session.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelsFile } from '../../server/analysis/compare.ts';
import { ENGINE_DEFAULTS, parseSession } from '../../server/config.ts';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');
const jsonBlocks = (text: string) => [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]) as Record<string, unknown>);

describe('docs', () => {
  it('session.md and guide.md session examples are valid session files', () => {
    const sessions = [...jsonBlocks(doc('session.md')), ...jsonBlocks(doc('guide.md')).filter((j) => 'fmri' in j)];
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const s of sessions) expect(() => parseSession(s, '/data/session.json')).not.toThrow();
  });

  it('session.md has a row for every field and engine setting', () => {
    const text = doc('session.md');
    for (const field of ['version', 'fmri', 'movie', 'mask', 'atlas', 'atlas_labels', 'truth', 'tr', 'onset', 'preset', 'seed', 'subject', 'session', 'task', 'run', 'engine']) expect(text).toMatch(new RegExp(`(\\| |, )\`${field}\`[ ,|]`));
    const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    for (const key of Object.keys(ENGINE_DEFAULTS)) expect(text).toContain(`| \`${snake(key)}\` |`);
    // Every unknown field is refused, so the documented names are the accepted ones.
    for (const key of Object.keys(ENGINE_DEFAULTS)) expect(() => parseSession({ fmri: 'b.nii', engine: { [snake(key)]: (ENGINE_DEFAULTS as Record<string, unknown>)[key] } }, '/x/s.json')).not.toThrow();
  });

  it("the guide's models.json example is a valid models file", () => {
    const models = jsonBlocks(doc('guide.md')).filter((j) => 'models' in j);
    expect(models).toHaveLength(1);
    expect(parseModelsFile(models[0], '/data/models.json').map((m) => m.name)).toEqual(['alexnet', 'vgg16', 'hmax']);
  });
});
