import { defineConfig } from 'vitest/config';

// Two suites: `unit` runs on a clean clone with nothing but the repo; `real` uses the
// public NIfTI files in ../shared/data and runs only where that folder exists.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/real/**'],
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
    ],
  },
});
