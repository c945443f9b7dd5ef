import { fileURLToPath } from 'node:url';
import type { NextConfig } from 'next';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

const config: NextConfig = {
  poweredByHeader: false,
  // The workspace packages and their pnpm links live above this app.
  turbopack: { root: repositoryRoot },
  outputFileTracingRoot: repositoryRoot,
  // `pnpm typecheck` (tsc -p tsconfig.json) checks this app with the rest of
  // the repository; checking again inside every `next build` only costs time.
  typescript: { ignoreBuildErrors: true },
};

// Next.js reads its configuration from the default export.
export default config;
