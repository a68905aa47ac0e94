/** `syncact fixtures`: writes a synthetic session (BOLD, movie, mask, atlas, ground truth) to a folder. */
import { resolve } from 'node:path';
import { SyncactError } from '../errors.ts';
import { locateFfmpeg } from '../io/ffmpeg.ts';
import { writeManifest } from '../synth/manifest.ts';
import { PRESET_NAMES, type PresetName } from '../synth/presets.ts';
import { createSyntheticSession, DEFAULT_SEED } from '../synth/session.ts';
import { writeSyntheticSession } from '../synth/writeSession.ts';
import { numberOption, parseCommandArgs } from './args.ts';
import type { Command } from './command.ts';

const usage = `usage: syncact fixtures --preset tiny|demo|hcp7t --out DIR [--seed N] [--manifest FILE] [--quiet]

Writes a synthetic session with planted ground truth (DESIGN.md §5) into DIR:
  bold.nii.gz, mask.nii.gz, movie.mp4, truth.json, truth_maps.nii.gz,
  atlas.nii.gz, atlas.tsv, session.json (paths relative to DIR).
The same preset and seed always give the same bytes.

options:
  --preset NAME  tiny (unit tests, 12×14×12, 60 TRs), demo (40×48×40 at 4 mm, 300 TRs),
                 hcp7t (113×136×113 at 1.6 mm, 921 TRs; about 1.3 GB, takes minutes)
  --out DIR      output folder (created if needed)
  --seed N       integer seed, default ${DEFAULT_SEED}
  --manifest FILE
                 also write a manifest (preset, seed, parameters, ffmpeg version,
                 sha256 of every file, paths relative to FILE's folder), as
                 fixtures/manifest.json is made
  --quiet        print nothing but errors

ffmpeg is taken from FFMPEG_PATH, else @ffmpeg-installer/ffmpeg, else PATH.`;

export const fixtures: Command = {
  name: 'fixtures',
  summary: 'write a synthetic session with planted ground truth (tiny, demo, hcp7t)',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'fixtures',
      argv,
      {
        preset: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        manifest: { type: 'string' },
        quiet: { type: 'boolean' },
      },
      false,
    );
    if (positionals.length) throw new SyncactError('CLI_USAGE', `fixtures: unexpected argument "${positionals[0]}"`);
    if (!values.preset) throw new SyncactError('CLI_USAGE', `fixtures: --preset is required (${PRESET_NAMES.join(', ')})`);
    if (!PRESET_NAMES.includes(values.preset as PresetName)) {
      throw new SyncactError('CLI_USAGE', `fixtures: unknown preset "${values.preset}"; presets: ${PRESET_NAMES.join(', ')}`);
    }
    if (!values.out) throw new SyncactError('CLI_USAGE', 'fixtures: --out DIR is required');
    const seed = numberOption('fixtures', 'seed', values.seed, DEFAULT_SEED);
    const session = createSyntheticSession({ preset: values.preset as PresetName, seed });
    const ffmpegPath = locateFfmpeg(); // before anything is printed or written
    const say = (line: string) => {
      if (!values.quiet) process.stdout.write(line + '\n');
    };
    say(
      `synthetic ${session.preset} session, seed ${session.seed}: ${session.grid.dims.join('×')} voxels ` +
        `(${session.maskedVoxels} in the mask), ${session.nVolumes} volumes at TR ${session.tr} s, ` +
        `movie ${session.movie.width}×${session.movie.height} at ${session.movie.fps} fps`,
    );
    const started = Date.now();
    const files = await writeSyntheticSession(session, values.out, {
      ffmpegPath,
      onFile: (f) => say(`  wrote ${f.path} (${formatBytes(f.bytes)})`),
    });
    if (values.manifest) {
      const command = `syncact fixtures --preset ${session.preset} --seed ${session.seed} --out ${values.out} --manifest ${values.manifest}`;
      await writeManifest(resolve(values.manifest), session, files, ffmpegPath, command);
      say(`  wrote ${resolve(values.manifest)}`);
    }
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  },
};

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
