/**
 * The commit recorded beside the version in report.json: read from the git folder's files
 * (loose ref, packed ref, detached HEAD, a `.git` file pointing at a worktree's folder), null
 * outside a checkout; and, in this repository, what `git rev-parse HEAD` says.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { gitCommit, SOFTWARE_COMMIT } from '../../server/analysis/version.ts';

const tmp = mkdtempSync(join(tmpdir(), 'syncact-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const A = 'a'.repeat(40);
const B = '0123456789abcdef0123456789abcdef01234567';

function files(root: string, entries: Record<string, string>): string {
  for (const [p, text] of Object.entries(entries)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}

describe('gitCommit', () => {
  it('follows HEAD to a loose ref, else to packed-refs; a detached HEAD is the commit', () => {
    expect(gitCommit(files(join(tmp, 'loose'), { '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${A}\n` }))).toBe(A);
    const packed = `# pack-refs with: peeled fully-peeled sorted\n${A} refs/heads/other\n${B} refs/heads/main\n`;
    expect(gitCommit(files(join(tmp, 'packed'), { '.git/HEAD': 'ref: refs/heads/main\n', '.git/packed-refs': packed }))).toBe(B);
    expect(gitCommit(files(join(tmp, 'detached'), { '.git/HEAD': `${B}\n` }))).toBe(B);
  });

  it('a .git file leads to the worktree folder, whose refs live in its commondir', () => {
    files(join(tmp, 'repo'), { '.git/packed-refs': `${B} refs/heads/feature\n`, '.git/worktrees/wt/HEAD': 'ref: refs/heads/feature\n', '.git/worktrees/wt/commondir': '../..\n' });
    expect(gitCommit(files(join(tmp, 'wt'), { '.git': `gitdir: ${join('..', 'repo', '.git', 'worktrees', 'wt')}\n` }))).toBe(B);
  });

  it('is null outside a checkout or for a ref that does not resolve', () => {
    expect(gitCommit(join(tmp, 'nothing-here'))).toBeNull();
    expect(gitCommit(files(join(tmp, 'unborn'), { '.git/HEAD': 'ref: refs/heads/main\n' }))).toBeNull();
  });

  it('$SYNCACT_COMMIT, when set, is the recorded commit (a build without .git)', async () => {
    vi.stubEnv('SYNCACT_COMMIT', B);
    vi.resetModules();
    try {
      expect((await import('../../server/analysis/version.ts')).SOFTWARE_COMMIT).toBe(B);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });

  it('in this checkout, equals git rev-parse HEAD', () => {
    let head: string;
    try {
      head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: join(import.meta.dirname, '../..'), encoding: 'utf8' }).trim();
    } catch {
      return; // no git, or not a checkout: nothing to compare with
    }
    expect(gitCommit(join(import.meta.dirname, '../..'))).toBe(head);
    expect(SOFTWARE_COMMIT).toMatch(/^[0-9a-f]{40}$/);
  });
});
