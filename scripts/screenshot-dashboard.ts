/**
 * The dashboard screenshot of the user's guide (docs/img/dashboard.png): opens the URL
 * that `syncact demo` printed in headless Chromium, lets the replay run for a while, switches
 * the brain view to the selected unit's synchronized map (its t-map), and saves the page.
 *
 *   npx syncact demo --port 8765 --token docscreenshot &
 *   npx tsx scripts/screenshot-dashboard.ts 'http://127.0.0.1:8765/?token=docscreenshot' docs/img/dashboard.png
 *
 * Chromium: /usr/bin/chromium, or $SYNCACT_CHROMIUM.
 */
import { chromium } from 'playwright-core';

const [url, out = 'docs/img/dashboard.png', waitS = '90'] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: npx tsx scripts/screenshot-dashboard.ts URL [OUT.png] [SECONDS]\n');
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.SYNCACT_CHROMIUM ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(url);
  await page.waitForTimeout(Number(waitS) * 1000);
  // The brain view on the selected unit's synchronized map (its GLM t-map).
  await page.getByRole('button', { name: 'unit t-map' }).click();
  await page.waitForTimeout(5000);
  await page.screenshot({ path: out });
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser.close();
}
