/**
 * Builds the dashboard into client/dist, which the syncact server serves. The root is
 * client/; the protocol definitions are imported from ../protocol (one definition for
 * server and client), so the dev server may read the repository root.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // NiiVue is one large module; it is loaded on demand by the brain panel.
    chunkSizeWarningLimit: 2500,
    target: 'es2022',
  },
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
});
