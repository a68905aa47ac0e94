/**
 * Test helper for test/cli/resume.test.ts: runs the `syncact` command line, and kills its
 * own process with a real SIGKILL at the start of the Nth coupling-engine TR (`beginTr`, so in
 * the middle of a TR, at a TR the test chooses, however fast or loaded the machine is).
 * $SYNCACT_TEST_SIGNAL sends another signal instead (SIGINT: a Ctrl-C mid-run).
 *
 * usage: node --import tsx test/cli/sigkillAtUpdate.ts N <syncact arguments…>
 */
import { CouplingEngine } from '../../server/engine/coupling.ts';

const n = Number(process.argv[2]);
if (!Number.isInteger(n) || n < 1) throw new Error(`sigkillAtUpdate: N must be a positive integer, got ${process.argv[2]}`);
process.argv.splice(2, 1);
// beginTr starts every TR the engine takes, whether the pipeline's stage operators call it
// or `update` does (a seek's catch-up).
const signal = (process.env.SYNCACT_TEST_SIGNAL ?? 'SIGKILL') as NodeJS.Signals;
const beginTr = CouplingEngine.prototype.beginTr;
let seen = 0;
CouplingEngine.prototype.beginTr = function (this: CouplingEngine, ...args: Parameters<CouplingEngine['beginTr']>) {
  if (++seen === n) process.kill(process.pid, signal);
  return beginTr.apply(this, args);
};
await import('../../server/cli.ts');
