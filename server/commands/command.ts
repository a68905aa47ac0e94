/** A subcommand of `syncact`: one file per command in server/commands/. */
export interface Command {
  name: string;
  /** One line for `syncact --help`. */
  summary: string;
  /** Full usage text for `syncact NAME --help`. */
  usage: string;
  /** Runs the command; resolves to the exit code. Throws SyncactError for user errors. */
  run(argv: string[]): Promise<number>;
}
