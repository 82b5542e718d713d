import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// Built into client/dist and served by the API server on the same origin
// (server/dashboard-static.ts), so the dashboard needs no CORS and no proxy in production.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
  },
  server: {
    // `npx vite --config client/vite.config.ts` against a server on :4000.
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:4000', ws: true },
      '/images': 'http://127.0.0.1:4000',
    },
  },
});
