// Bundles the Worker into one ES module (dist/worker.js), as wrangler would:
// workspace packages from their built `dist`, `cloudflare:*` left to workerd.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/worker.ts'],
  outfile: 'dist/worker.js',
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  conditions: ['workerd', 'worker', 'import'],
  external: ['cloudflare:*'],
  sourcemap: true,
  logLevel: 'warning',
});
