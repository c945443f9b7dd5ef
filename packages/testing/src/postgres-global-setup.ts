// Vitest global setup: one PostgreSQL server for the whole run (tests make
// their own databases on it). `$ATTACHE_TEST_DATABASE_URL` names a server
// to use instead of starting one. Without either, PostgreSQL tests skip
// locally and fail under CI (see `describePostgres`).
import type { TestProject } from 'vitest/node';
import { findPostgresBinaries, startPostgres, type RunningPostgres } from './postgres.js';

let running: RunningPostgres | undefined;

export async function setup(project: TestProject): Promise<void> {
  const given = process.env.ATTACHE_TEST_DATABASE_URL;
  if (given) {
    project.provide('postgresUrl', given);
    project.provide('postgresMissingReason', '');
    return;
  }
  const bin = findPostgresBinaries();
  if (bin === undefined) {
    project.provide('postgresUrl', null);
    project.provide(
      'postgresMissingReason',
      'no server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql) and ATTACHE_TEST_DATABASE_URL is not set',
    );
    return;
  }
  running = await startPostgres(bin);
  project.provide('postgresUrl', running.url);
  project.provide('postgresMissingReason', '');
}

export async function teardown(): Promise<void> {
  await running?.stop();
  running = undefined;
}
