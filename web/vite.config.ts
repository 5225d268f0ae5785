import { defineConfig } from 'vite';

/** Kiln on its default port, for `npm run dev:web` (the app's dev server) while `npm start` runs. */
const api = 'http://127.0.0.1:4000';

export default defineConfig({
  root: import.meta.dirname,
  // The app is served by Kiln at `/`; its built files carry content hashes (cached for good).
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  oxc: { jsx: { runtime: 'automatic' } },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true },
      '/graphiql': api,
      '/files': api,
      '/uploads': api,
      '/health': api,
    },
  },
});
