/** docs/commands.md is exactly what scripts/gen-commands-doc.ts makes from the commands' usage texts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS_DOC, commandsDoc } from '../../scripts/gen-commands-doc.ts';
import { commands } from '../../server/commands/index.ts';

describe('docs/commands.md', () => {
  it('equals the generated text (if not: npm run docs:commands)', () => {
    expect(readFileSync(COMMANDS_DOC, 'utf8')).toBe(commandsDoc());
  });

  it('holds every command and each option its usage names', () => {
    const doc = commandsDoc();
    for (const c of commands) {
      expect(doc).toContain(`## ${c.name}\n`);
      for (const option of c.usage.match(/--[a-z][a-z-]+/g) ?? []) expect(doc).toContain(option);
    }
  });
});
