import { defineConfig } from 'vitest/config';

// Suites: `unit` runs on a clean clone with nothing but the repo; `real` uses the
// public NIfTI files in ../shared/data and runs only where that folder exists; `e2e`
// drives the built dashboard in headless Chromium.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/real/**', 'test/e2e/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'real',
          include: ['test/real/**/*.test.ts'],
          testTimeout: 120_000,
        },
      },
      // The dashboard in headless Chromium against `syncact demo` (needs /usr/bin/chromium
      // and, on a fresh clone, generates the demo session first: minutes).
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
