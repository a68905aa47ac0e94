/** Shared argument parsing for subcommands: node:util parseArgs with typed usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SyncactError } from '../errors.ts';

export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new SyncactError('CLI_USAGE', `${command}: ${(e as Error).message} (see \`syncact ${command} --help\`)`);
  }
}

/** Parses a numeric option, or throws a usage error naming it. */
export function numberOption(command: string, name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new SyncactError('CLI_USAGE', `${command}: --${name} must be a number, got "${value}"`);
  return n;
}
