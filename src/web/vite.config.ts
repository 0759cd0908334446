// Builds the web console into dist/web, which the API serves at `/` (src/api/web-console.ts).
// `npm run dev:web` serves it with hot reload and sends /api to a Warden on WARDEN_API.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  plugins: [react()],
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('../../dist/web', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { '/api': process.env.WARDEN_API ?? 'http://127.0.0.1:8080' },
  },
});
