/** The registry of subcommands, in the order `syncact --help` lists them. */
import type { Command } from './command.ts';

export const commands: Command[] = [];
