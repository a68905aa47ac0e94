/**
 * The `syncact` command line. Each subcommand lives in server/commands/; this file only
 * dispatches, prints help, and turns errors into one typed line on stderr with a non-zero
 * exit code (DESIGN.md §9).
 */
import { formatError, SyncactError } from './errors.ts';
import type { Command } from './commands/command.ts';
import { commands } from './commands/index.ts';

function mainHelp(list: Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    'usage: syncact <command> [options]',
    '',
    'commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `syncact <command> --help` for the options of a command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp(commands) + '\n');
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    throw new SyncactError('CLI_USAGE', `unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.trimEnd() + '\n');
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(formatError(e) + '\n');
    if (process.env.SYNCACT_DEBUG && e instanceof Error) process.stderr.write((e.stack ?? '') + '\n');
    process.exitCode = e instanceof SyncactError && e.code === 'CLI_USAGE' ? 2 : 1;
  },
);
