/** The registry of subcommands, in the order `syncact --help` lists them. */
import type { Command } from './command.ts';
import { inspect } from './inspect.ts';
import { fixtures } from './fixtures.ts';
import { analyze } from './analyze.ts';
import { replay } from './replay.ts';
import { demo } from './demo.ts';
import { compare } from './compare.ts';

export const commands: Command[] = [fixtures, inspect, replay, analyze, compare, demo];
