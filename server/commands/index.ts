/** The registry of subcommands, in the order `syncact --help` lists them. */
import type { Command } from './command.ts';
import { inspect } from './inspect.ts';
import { fixtures } from './fixtures.ts';

export const commands: Command[] = [fixtures, inspect];
