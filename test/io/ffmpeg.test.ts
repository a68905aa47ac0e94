import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateFfmpeg, locateFfprobe, locateTool } from '../../server/io/ffmpeg.ts';
import { encodeArgs, encodeVideo } from '../../server/io/videoEncode.ts';
import { SyncactError } from '../../server/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncact-ffmpeg-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fake executable (a shell script) named `name` in `folder`. */
async function fakeTool(folder: string, name: string, script = 'exit 0'): Promise<string> {
  const path = join(folder, name);
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

describe('locating ffmpeg and ffprobe', () => {
  it('prefers FFMPEG_PATH / FFPROBE_PATH', async () => {
    const ffmpeg = await fakeTool(dir, 'my-ffmpeg');
    const ffprobe = await fakeTool(dir, 'my-ffprobe');
    expect(locateFfmpeg({ env: { FFMPEG_PATH: ffmpeg } })).toBe(ffmpeg);
    expect(locateFfprobe({ env: { FFPROBE_PATH: ffprobe } })).toBe(ffprobe);
  });

  it('treats a wrong FFMPEG_PATH as an error naming it, not as absent', () => {
    const bad = join(dir, 'nope');
    expect(() => locateFfmpeg({ env: { FFMPEG_PATH: bad } })).toThrow(SyncactError);
    expect(() => locateFfmpeg({ env: { FFMPEG_PATH: bad } })).toThrow(expect.objectContaining({ code: 'FFMPEG_NOT_FOUND', file: bad }) as unknown as Error);
    expect(() => locateFfmpeg({ env: { FFMPEG_PATH: dir } })).toThrow(/not an executable file/);
  });

  it('uses the installer packages, then the PATH', async () => {
    expect(locateFfmpeg({ env: { PATH: '' } })).toMatch(/@ffmpeg-installer/);
    expect(locateFfprobe({ env: { PATH: '' } })).toMatch(/@ffprobe-installer/);
    const bin = join(dir, 'bin');
    await (await import('node:fs/promises')).mkdir(bin);
    const onPath = await fakeTool(bin, 'ffmpeg');
    expect(locateTool('ffmpeg', { env: { PATH: `/nonexistent:${bin}` }, skipPackages: true })).toBe(onPath);
  });

  it('throws FFMPEG_NOT_FOUND saying where it looked', () => {
    expect(() => locateTool('ffprobe', { env: { PATH: '' }, skipPackages: true })).toThrow(
      expect.objectContaining({
        code: 'FFMPEG_NOT_FOUND',
        message: expect.stringContaining('set FFPROBE_PATH, install @ffprobe-installer/ffprobe, or put ffprobe on PATH'),
      }) as unknown as Error,
    );
  });
});

describe('encodeVideo', () => {
  const frames = { width: 16, height: 16, fps: 4, frameCount: 8, frame: () => new Uint8Array(16 * 16 * 3).fill(128) };

  it('asks ffmpeg for a reproducible, single-threaded, metadata-free encode', () => {
    const args = encodeArgs(frames, 'out.mp4');
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    expect(after('-threads')).toBe('1');
    expect(after('-fflags')).toBe('+bitexact');
    expect(after('-flags:v')).toBe('+bitexact');
    expect(after('-map_metadata')).toBe('-1');
    expect(after('-pix_fmt')).toBe('rgb24');
    expect(after('-s')).toBe('16x16');
    expect(args.at(-1)).toBe('out.mp4');
  });

  it('reports a failing ffmpeg with FFMPEG_FAILED and its stderr, leaving no file', async () => {
    const failing = await fakeTool(dir, 'failing-ffmpeg', 'cat > /dev/null; echo "Unknown encoder libx264" >&2; exit 1');
    const path = join(dir, 'fail.mp4');
    await expect(encodeVideo(path, { ...frames, ffmpegPath: failing })).rejects.toMatchObject({
      code: 'FFMPEG_FAILED',
      message: expect.stringContaining('Unknown encoder libx264'),
    });
    expect((await readdir(dir)).filter((f) => f.startsWith('fail.mp4'))).toEqual([]);
  });

  it('reports an ffmpeg that quits without reading its input', async () => {
    const quitter = await fakeTool(dir, 'quitting-ffmpeg', 'exit 3');
    const big = { ...frames, width: 256, height: 256, frameCount: 50, frame: () => new Uint8Array(256 * 256 * 3) };
    await expect(encodeVideo(join(dir, 'quit.mp4'), { ...big, ffmpegPath: quitter })).rejects.toMatchObject({
      code: 'FFMPEG_FAILED',
      message: expect.stringContaining('exited with 3'),
    });
  });

  it('rejects odd frame sizes and frames of the wrong length', async () => {
    await expect(encodeVideo(join(dir, 'odd.mp4'), { ...frames, width: 15 })).rejects.toMatchObject({ code: 'FFMPEG_FAILED' });
    await expect(encodeVideo(join(dir, 'short.mp4'), { ...frames, frame: () => new Uint8Array(10) })).rejects.toMatchObject({
      code: 'FFMPEG_FAILED',
      message: expect.stringContaining('frame 0 has 10 bytes'),
    });
    expect((await readdir(dir)).filter((f) => f.endsWith('.mp4') || f.endsWith('.partial'))).toEqual([]);
  });
});
