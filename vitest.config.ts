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
    // One throwaway PostgreSQL server and one Ceph cluster serving S3
    // (radosgw) per run, each when installed, for the tests that need them.
    globalSetup: ['packages/testing/src/postgres-global-setup.ts', 'packages/testing/src/radosgw-global-setup.ts'],
    env: {
      // The AWS SDK prints a NodeVersionSupportWarning once per process on
      // Node < 22 (SDK releases after early January 2027 need Node 22). It is
      // noise in test output, where every S3 test process would print it; the
      // servers we ship leave it on. Supported Node versions: README.md,
      // "Supported runtimes".
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
