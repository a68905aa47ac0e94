/**
 * The software version written into every output (report.json, dataset_description.json),
 * read from package.json so that a release bump cannot leave a stale copy behind; and the
 * git commit of the checkout it runs from, because between releases the version alone does
 * not say which code made a result (a run is repeatable only with the same code).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const SOFTWARE_VERSION: string = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The commit checked out at ROOT (uncommitted changes are not seen), or null outside a git
 * checkout (an npm install); $SYNCACT_COMMIT, when set and not empty, says it instead (a
 * container or tarball built from a known commit).
 */
export const SOFTWARE_COMMIT: string | null = process.env.SYNCACT_COMMIT || gitCommit(ROOT);

/**
 * HEAD's commit, read from the repository's files rather than by running git (which may be
 * absent): HEAD is a commit id (detached) or a ref, found loose or in packed-refs; a `.git`
 * file (worktree, submodule) points at the git folder, whose `commondir` holds the refs.
 */
export function gitCommit(root: string): string | null {
  const read = (p: string): string | null => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  };
  let gitDir = join(root, '.git');
  const pointer = read(gitDir);
  if (pointer !== null) {
    const m = /^gitdir: (.+)$/m.exec(pointer);
    if (!m) return null;
    gitDir = join(root, m[1].trim());
  }
  const head = read(join(gitDir, 'HEAD'))?.trim();
  if (!head) return null;
  if (/^[0-9a-f]{40}$/.test(head)) return head;
  const ref = /^ref: (.+)$/.exec(head)?.[1];
  if (!ref) return null;
  const common = read(join(gitDir, 'commondir'))?.trim();
  for (const dir of common ? [gitDir, join(gitDir, common)] : [gitDir]) {
    const loose = read(join(dir, ref))?.trim();
    if (loose && /^[0-9a-f]{40}$/.test(loose)) return loose;
    const packed = read(join(dir, 'packed-refs'));
    const line = packed?.split('\n').find((l) => l.endsWith(` ${ref}`));
    if (line && /^[0-9a-f]{40} /.test(line)) return line.slice(0, 40);
  }
  return null;
}
