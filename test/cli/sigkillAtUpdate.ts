/**
 * Test helper for test/cli/resume.test.ts: runs the `syncact` command line, and kills its
 * own process with a real SIGKILL at the start of the Nth coupling-engine update (so in
 * the middle of a TR, at a TR the test chooses, however fast or loaded the machine is).
 *
 * usage: node --import tsx test/cli/sigkillAtUpdate.ts N <syncact arguments…>
 */
import { CouplingEngine } from '../../server/engine/coupling.ts';

const n = Number(process.argv[2]);
if (!Number.isInteger(n) || n < 1) throw new Error(`sigkillAtUpdate: N must be a positive integer, got ${process.argv[2]}`);
process.argv.splice(2, 1);
const update = CouplingEngine.prototype.update;
let seen = 0;
CouplingEngine.prototype.update = function (this: CouplingEngine, ...args: Parameters<CouplingEngine['update']>) {
  if (++seen === n) process.kill(process.pid, 'SIGKILL');
  return update.apply(this, args);
};
await import('../../server/cli.ts');
