import { defineConfig } from 'vitest/config';

// Tests run against each workspace package's TypeScript source (the `source`
// export condition), so `pnpm test` needs no build of the package under test.
const conditions = ['source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One throwaway PostgreSQL server per run (when installed) for the PostgreSQL tests.
    globalSetup: ['packages/testing/src/postgres-global-setup.ts'],
  },
});
