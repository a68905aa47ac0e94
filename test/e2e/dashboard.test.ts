/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against
 * the real `syncact demo` on a free port: the TR counter advances, pause and play, seek,
 * a heatmap click changes the brain overlay and the timeline, and a killed-and-restarted
 * server is reconnected to. Screenshots go to test-artifacts/. The display latency (a TR's
 * state handed to the server → drawn in the page) is measured and printed, not asserted.
 *
 * The tests run in order on one server and one page: each starts where the previous one
 * left the replay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.SYNCACT_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'e2e-token-0123456789';
const SPEED = 4;
/** Chromium flags for a container: no sandbox, no GPU (WebGL2 through SwiftShader), nothing phoning home. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

interface Demo {
  proc: ChildProcess;
  url: string;
  port: number;
  exited: Promise<number | null>;
}

/** Starts `syncact demo` and resolves with the URL it prints (the first stdout line starting with http). */
function startDemo(port: number, timings: string): Promise<Demo> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'syncact.js'), 'demo', '--port', String(port), '--speed', String(SPEED), '--token', TOKEN, '--timings', timings],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`syncact demo printed no URL in time; stderr:\n${stderr}`)), 540_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('http'));
      if (line) {
        clearTimeout(timer);
        resolve({ proc, url: line.trim(), port: Number(new URL(line).port), exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`syncact demo exited (${code}) before printing its URL; stderr:\n${stderr}`));
    });
  });
}

async function stopDemo(d: Demo | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!d || d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  d.proc.kill(signal);
  await Promise.race([d.exited, new Promise((r) => setTimeout(r, 10_000))]);
}

async function buildClientIfMissing(): Promise<void> {
  if (existsSync(join(ROOT, 'client', 'dist', 'index.html'))) return;
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'client', 'vite.config.ts'), logLevel: 'warn' });
}

/**
 * Latency per TR: the page's draw time minus the time the demo handed the TR's state to
 * the server (its --timings file; first occurrence of each TR). Both are wall clocks of
 * the same machine (Date.now in Node, performance.timeOrigin + now() in the page).
 */
function latency(timingsFile: string, drawn: Record<string, number>): { trs: number; median_ms: number; p95_ms: number; max_ms: number } {
  const sent = new Map<number, number>();
  for (const line of readFileSync(timingsFile, 'utf8').split('\n')) {
    const [k, t] = line.split(' ').map(Number);
    if (Number.isFinite(k) && Number.isFinite(t) && !sent.has(k)) sent.set(k, t);
  }
  const lat: number[] = [];
  for (const [k, drawnAt] of Object.entries(drawn)) {
    const s = sent.get(Number(k));
    if (s !== undefined) lat.push(drawnAt - s);
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * (lat.length - 1)))] ?? NaN;
  return { trs: lat.length, median_ms: q(0.5), p95_ms: q(0.95), max_ms: q(1) };
}

let demo: Demo | null = null;
let browser: Browser | null = null;
let page: Page;
const timings = join(mkdtempSync(join(tmpdir(), 'syncact-e2e-')), 'timings.txt');
/** TRs drawn by the page before the first seek (latency is measured over these). */
let drawnBeforeSeek: Record<string, number> = {};

const tr = async () => Number(await page.textContent('[data-testid=tr-counter]'));
const brain = (attr: string) => page.getAttribute('[data-testid=brain]', attr);
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, name) });

/** Waits until `read()` satisfies `ok`, polling; returns the last value. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  let v = await read();
  while (!ok(v)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
    v = await read();
  }
  return v;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium; .ci/run does) or set SYNCACT_CHROMIUM`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await buildClientIfMissing();
  demo = await startDemo(0, timings);
  // launch() gives the browser a fresh temporary profile (its own --user-data-dir), removed on close
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${demo.url}&trace=1`);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await stopDemo(demo);
});

describe('dashboard on syncact demo, in headless Chromium', () => {
  it('connects, shows the session and the TR counter advances', async () => {
    await until(() => page.getAttribute('[data-testid=connection]', 'data-phase'), (p) => p === 'open', 'the connection');
    expect(await page.textContent('[data-testid=control]')).toContain('control: yes');
    const first = await until(tr, (t) => t >= 0, 'the first TR');
    // ~5 s of play at 4×: enough drawn TRs for the latency figure below
    const later = await until(tr, (t) => t >= first + 20, 'the TR counter to advance');
    expect(later).toBeGreaterThan(first);
    // NiiVue (WebGL2 via SwiftShader) or the canvas fallback, whichever the browser allows; an overlay is drawn
    expect(['niivue', 'canvas']).toContain(await brain('data-mode'));
    await until(() => brain('data-overlay'), (o) => o === 'network:0', 'the first overlay');
    await shot('e2e-playing-1280x800.png');
  });

  it('pause stops the counter and play resumes it', async () => {
    await page.click('[data-testid=play]');
    await until(() => page.textContent('[data-testid=play]'), (t) => t === 'Play', 'the pause acknowledgement');
    await page.waitForTimeout(500); // the TR in flight when the pause arrived still finishes
    const paused = await tr();
    await new Promise((r) => setTimeout(r, 2000)); // 8 TRs at 4×
    expect(await tr()).toBe(paused);
    await shot('e2e-paused.png');
    // the keyboard: space plays again
    await page.keyboard.press('Space');
    await until(tr, (t) => t > paused, 'the counter to resume');
    expect(await page.textContent('[data-testid=play]')).toBe('Pause');
  });

  it('seeking jumps to the chosen TR', async () => {
    // evaluated in the page (globalThis is its window; this file is typed for Node)
    drawnBeforeSeek = await page.evaluate(() => ({ ...(globalThis as unknown as { syncactTrace: Record<string, number> }).syncactTrace }));
    const before = await tr();
    expect(before).toBeLessThan(150);
    await page.locator('[data-testid=seek]').fill('200');
    const after = await until(tr, (t) => t >= 200, 'the seek to TR 200');
    expect(after).toBeLessThan(200 + 20); // a jump, not a fast-forward from `before`
    // the annotation table is recomputed where the seek landed, not left at the stride TR before it
    const annotationTr = async () => Number(/TR (\d+)/.exec((await page.textContent('[data-testid=annotations] h2')) ?? '')?.[1] ?? -1);
    await until(annotationTr, (t) => t >= 200, 'the annotation at the seek target');
    await shot('e2e-after-seek.png');
  });

  it('clicking a heatmap cell changes the brain overlay and the timeline', async () => {
    // paused, so that what changes is the click's doing
    await page.click('[data-testid=play]');
    await until(() => page.textContent('[data-testid=play]'), (t) => t === 'Play', 'pause');
    const canvas = page.locator('[data-testid=heatmap-canvas]');
    const box = (await canvas.boundingBox())!;
    const features = 15;
    const cellH = (box.height - 4 - 30) / features;
    const overlayBefore = await brain('data-overlay');
    const pairBefore = await page.getAttribute('[data-testid=timeline]', 'data-pair');
    const brainBefore = await page.locator('[data-testid=brain] .view').screenshot();
    const timelineBefore = await page.locator('[data-testid=timeline-canvas]').screenshot();
    // a CNN unit (early in the s2 group) × the 4th feature: hover shows its values, a click selects it
    const target = { x: 112 + 0.45 * (box.width - 120), y: 4 + 3.5 * cellH };
    await canvas.hover({ position: target });
    const tip = await page.locator('[data-testid=heatmap-tip]').textContent();
    expect(tip).toMatch(/^s2:\d+ × dorsal_attention/);
    expect(tip).toMatch(/r = -?\d\.\d{3}/);
    await canvas.click({ position: target });
    // a CNN unit has its own synchronized map (session unit_maps: every unit by default)
    const ownOverlay = await until(() => brain('data-overlay'), (o) => /^unit-t:\d+$/.test(o ?? '') && Number(o!.split(':')[1]) < 141, "the unit's own t-map overlay");
    expect(Number(ownOverlay!.split(':')[1])).toBeGreaterThanOrEqual(48); // s2 starts at unit 48
    const pair = await page.getAttribute('[data-testid=timeline]', 'data-pair');
    expect(pair).not.toBe(pairBefore);
    expect(pair!.endsWith(',3')).toBe(true);
    expect(overlayBefore).not.toBe(ownOverlay);
    await page.waitForTimeout(300);
    expect(Buffer.compare(await page.locator('[data-testid=brain] .view').screenshot(), brainBefore)).not.toBe(0);
    expect(Buffer.compare(await page.locator('[data-testid=timeline-canvas]').screenshot(), timelineBefore)).not.toBe(0);
    await shot('e2e-heatmap-network.png');
    // the annotation lists every CNN unit from its own map; the clicked unit's row is selected and scrolled into view
    expect(await page.textContent('[data-testid=annotation-count]')).toBe('141 units');
    const row = page.locator(`[data-testid=annotations] tbody tr[data-unit="${ownOverlay!.split(':')[1]}"]`);
    await until(async () => (await row.getAttribute('class')) ?? '', (c) => c.split(' ').includes('sel'), "the selected unit's row");
    const list = page.locator('[data-testid=annotations] .scroll');
    const visible = async () => {
      const [b, r] = [await list.boundingBox(), await row.boundingBox()];
      return b !== null && r !== null && r.y >= b.y && r.y + r.height <= b.y + b.height + 1;
    };
    await until(visible, (v) => v, "the selected unit's row in view");
    // sorted by layer: the model's first unit (s1:0) heads the list
    await page.click('[data-testid=annotations] th:has-text("layer")');
    expect(await page.locator('[data-testid=annotations] tbody tr').first().getAttribute('data-unit')).toBe('0');
    await until(async () => (await list.evaluate((el) => el.scrollTop)) as number, (t) => t === 0, 'the sorted list at its top');
    await shot('e2e-annotation-units.png');
    // a PCA component (the last group, a GLM regressor): its t-map, defined by TR 200
    await canvas.click({ position: { x: box.width - 8 - 2, y: 4 + 0.5 * cellH } });
    const unitOverlay = await until(() => brain('data-overlay'), (o) => /^unit-t:\d+$/.test(o ?? '') && Number(o!.split(':')[1]) >= 141, "the component's t-map overlay");
    expect(Number(unitOverlay!.split(':')[1])).toBeGreaterThanOrEqual(141);
    expect(Number(await brain('data-overlay-tr'))).toBeGreaterThanOrEqual(200);
    await shot('e2e-heatmap-unit-tmap.png');
    await page.click('[data-testid=play]');
    await until(() => page.textContent('[data-testid=play]'), (t) => t === 'Pause', 'play');
  });

  it('while paused, ArrowRight steps one TR and ArrowLeft steps back, staying paused', async () => {
    await page.click('[data-testid=play]');
    await until(() => page.textContent('[data-testid=play]'), (t) => t === 'Play', 'pause');
    await page.waitForTimeout(500); // the TR in flight when the pause arrived still finishes
    // the keys are ignored while a form control has the focus (the seek bar, the speed menu)
    await page.evaluate(() => ((globalThis as unknown as { document: { activeElement: { blur?: () => void } | null } }).document.activeElement?.blur?.()));
    const at = await tr();
    const frameTr = () => page.textContent('[data-testid=movie] .frame-tr');
    await page.keyboard.press('ArrowRight');
    await until(tr, (t) => t === at + 1, `TR ${at + 1} after ArrowRight`);
    await until(frameTr, (t) => t === `frame of TR ${at + 1}`, 'the stepped frame');
    await page.keyboard.press('ArrowLeft');
    await until(tr, (t) => t === at, `TR ${at} after ArrowLeft`);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await until(tr, (t) => t === at + 2, `TR ${at + 2} after two ArrowRights`);
    await page.waitForTimeout(1500); // 6 TRs at 4×: still paused, nothing advances
    expect(await tr()).toBe(at + 2);
    expect(await page.textContent('[data-testid=play]')).toBe('Play');
    // the brain colour bar carries the map's unit and numbers (a t-map is selected)
    expect(await brain('data-overlay')).toMatch(/^unit-t:/);
    expect(await page.textContent('[data-testid=colour-bar]')).toMatch(/t\s*−\d+\.\d\s*±\d+\.\d\s*\d+\.\d/);
    await page.locator('[data-testid=brain]').screenshot({ path: join(ARTIFACTS, 'e2e-brain-panel.png') });
    await page.click('[data-testid=play]');
    await until(() => page.textContent('[data-testid=play]'), (t) => t === 'Pause', 'play');
  });

  it('reconnects to a killed and restarted server', async () => {
    const port = demo!.port;
    await stopDemo(demo, 'SIGKILL');
    await until(() => page.getAttribute('[data-testid=connection]', 'data-phase'), (p) => p === 'waiting' || p === 'connecting', 'the page to notice');
    await page.waitForTimeout(600);
    await shot('e2e-disconnected.png');
    demo = await startDemo(port, timings + '.2');
    await until(() => page.getAttribute('[data-testid=connection]', 'data-phase'), (p) => p === 'open', 'the reconnection', 60_000);
    expect(await page.textContent('[data-testid=telemetry-connection]')).toContain('1 reconnect');
    expect(await page.textContent('[data-testid=control]')).toContain('control: yes');
    // the new server replays from TR 0: the counter goes back and advances again
    const t0 = await until(tr, (t) => t < 100, 'the restarted run');
    await until(tr, (t) => t > t0, 'the counter to advance after the reconnect');
    await shot('e2e-reconnected.png');
  });

  it('20× replay: display latency and dropped display updates (printed, not asserted)', async () => {
    await page.evaluate(() => {
      const t = (globalThis as unknown as { syncactTrace: Record<string, number> }).syncactTrace;
      for (const k of Object.keys(t)) delete t[k];
    });
    const dropped0 = await page.textContent('[data-testid=dropped-display]');
    const from = await tr();
    await page.selectOption('[data-testid=speed]', '20');
    await until(tr, (t) => t >= from + 60, '60 TRs at 20×');
    const drawn = await page.evaluate(() => ({ ...(globalThis as unknown as { syncactTrace: Record<string, number> }).syncactTrace }));
    const figures = latency(timings + '.2', drawn);
    const dropped = await page.textContent('[data-testid=dropped-display]');
    console.log(`20×: display latency over ${figures.trs} TRs: median ${figures.median_ms.toFixed(1)} ms, p95 ${figures.p95_ms.toFixed(1)} ms; dropped display updates ${dropped0} → ${dropped}`);
    writeFileSync(join(ARTIFACTS, 'e2e-latency-20x.json'), JSON.stringify({ ...figures, speed: 20, dropped_display: dropped }, null, 2) + '\n');
    await shot('e2e-playing-20x.png');
    expect(figures.trs).toBeGreaterThan(10);
    await page.selectOption('[data-testid=speed]', String(SPEED));
  });

  it('the canvas brain view (no WebGL2, or ?brain=canvas) shows the slices and the overlay', async () => {
    const other = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await other.goto(`${demo!.url}&brain=canvas`);
      await until(() => other.getAttribute('[data-testid=brain]', 'data-mode'), (m) => m === 'canvas', 'the canvas view');
      expect(await other.textContent('[data-testid=brain-fallback]')).toContain('NiiVue is off');
      await until(() => other.getAttribute('[data-testid=brain]', 'data-overlay'), (o) => o === 'network:0', 'the overlay');
      const before = await other.locator('[data-testid=brain-canvas]').screenshot();
      // a click on the slices moves the crosshair and the read-out
      const loc0 = await other.textContent('[data-testid=brain-location]');
      const b = (await other.locator('[data-testid=brain-canvas]').boundingBox())!;
      await other.locator('[data-testid=brain-canvas]').click({ position: { x: b.width * 0.18, y: b.height * 0.45 } });
      await until(() => other.textContent('[data-testid=brain-location]'), (t) => t !== loc0, 'the crosshair to move');
      expect(Buffer.compare(await other.locator('[data-testid=brain-canvas]').screenshot(), before)).not.toBe(0);
      await other.screenshot({ path: join(ARTIFACTS, 'e2e-brain-canvas-fallback.png') });
    } finally {
      await other.close();
    }
  });

  it('fits a large screen too', async () => {
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.waitForTimeout(800);
    await shot('e2e-playing-1920x1080.png');
    const overflow = await page.evaluate(() => {
      const w = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
      return w.document.documentElement.scrollWidth > w.innerWidth;
    });
    expect(overflow).toBe(false);
  });

  it('display latency: a TR handed to the server → drawn in the page (printed, not asserted)', () => {
    const result = { ...latency(timings, drawnBeforeSeek), speed: SPEED };
    expect(result.trs).toBeGreaterThan(5);
    console.log(`display latency over ${result.trs} TRs at ${SPEED}×: median ${result.median_ms.toFixed(1)} ms, p95 ${result.p95_ms.toFixed(1)} ms`);
    writeFileSync(join(ARTIFACTS, 'e2e-latency.json'), JSON.stringify(result, null, 2) + '\n');
  });
});
