// Builds the operator console: `npx vite build --config console/vite.config.mjs`.
// The output, dist/console, is what src/http/console.ts serves under /console.
import { fileURLToPath, URL } from 'node:url';
import { defineConfig } from 'vite';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('./'),
  // The service serves the build under /console/, so every asset URL starts there.
  base: '/console/',
  // Nothing to copy verbatim: every file is imported, hence hashed.
  publicDir: false,
  build: {
    outDir: here('../dist/console'),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // One chunk for browsers with native module preload: the polyfill would be dead weight.
    modulePreload: { polyfill: false },
    // Never turn a file into a data: URL: the console's CSP allows data: for images only.
    assetsInlineLimit: 0,
    rolldownOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  // `npx vite --config console/vite.config.mjs` serves the console with hot reload and
  // forwards the API to a service started with `npm start` (its default port).
  server: { proxy: { '/v1': { target: 'http://127.0.0.1:8080', changeOrigin: false } } },
});
