import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

// .ci/run reads the JSON report for its `N passed, N failed` line.
const json = process.env.MENAGERIE_VITEST_JSON;

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS entry for type-graphql and Apollo; Vite would give our
    // own files its .mjs twin, and two copies of graphql fail each other's instanceof checks.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    include: ['tests/**/*.test.ts'],
    // Native TensorFlow and sharp each keep thread pools; forks isolate them per file.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PostgreSQL and S3 start on first use (tests/helpers/backends.ts); this stops them.
    globalSetup: ['tests/helpers/services-global-setup.ts'],
    // Tests choose their database and store themselves: a developer's exported services
    // (`eval "$(npm run -s services -- start)"`) must not redirect every workspace.
    env: { TF_CPP_MIN_LOG_LEVEL: '2', MENAGERIE_DATABASE_URL: '', MENAGERIE_STORE_URL: '' },
    reporters: json ? ['default', ['json', { outputFile: json }]] : ['default'],
  },
});
