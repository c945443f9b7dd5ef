// `MetadataStore` on PostgreSQL through node-postgres (`pg`): the
// distributed setup, where any number of server processes share one
// database. Same schema, migrations and queries as SQLite; what differs is
// in `postgresDialectInfo` (postgres-dialect.ts, where the locking and
// isolation rules are explained). This module adds the pool and LISTEN.
//
// pg is an optional peer dependency, imported statically (not through
// `requireDriver`) so that bundlers still see it; without it installed, Node
// fails the import with "Cannot find package 'pg'".
import type { MetadataStore } from '@attache/core';
import { Kysely, type PostgresPool } from 'kysely';
import pg from 'pg';
import { createSqlMetadata, type ReleaseNotifications } from './metadata.js';
import { RELEASE_CHANNEL, ReadCommittedPostgresDialect, postgresDialectInfo } from './postgres-dialect.js';
import type { AttacheDatabase } from './schema.js';

export type PostgresMetadataOptions =
  /** Opens a pool of at most `max` connections (default 10); `close()` ends it. */
  | { connectionString: string; max?: number }
  /** Uses a pool you made; `close()` leaves it open for you to end. */
  | { pool: pg.Pool };

const DEFAULT_POOL_SIZE = 10;

export function postgresMetadata(options: PostgresMetadataOptions): MetadataStore {
  const owned = !('pool' in options);
  const pool =
    'pool' in options
      ? options.pool
      : new pg.Pool({ connectionString: options.connectionString, max: options.max ?? DEFAULT_POOL_SIZE });
  // An idle connection the server dropped (restart, failover) is reported
  // here; without a listener it would crash the process. The pool has
  // already discarded it, and the next query opens a new one.
  if (owned) pool.on('error', ignoreConnectionError);
  const kysely = new Kysely<AttacheDatabase>({ dialect: new ReadCommittedPostgresDialect({ pool: guarded(pool, owned) }) });
  return createSqlMetadata(kysely, postgresDialectInfo, { notifications: releaseNotifications(pool) });
}

/**
 * LISTENs for key releases on one connection of the pool, taken on the first
 * subscription. Notifications only speed up blocked acquires (they also poll),
 * so a lost listening connection is simply retaken on the next subscription.
 */
function releaseNotifications(pool: pg.Pool): ReleaseNotifications {
  const listeners = new Set<(namespace: string, key: string) => void>();
  let client: pg.PoolClient | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;

  const deliver = (message: pg.Notification) => {
    if (message.channel !== RELEASE_CHANNEL || message.payload === undefined) return;
    let released: { namespace?: unknown; key?: unknown };
    try {
      released = JSON.parse(message.payload) as { namespace?: unknown; key?: unknown };
    } catch {
      return;
    }
    if (typeof released.namespace !== 'string' || typeof released.key !== 'string') return;
    for (const listener of listeners) listener(released.namespace, released.key);
  };

  const listen = () => {
    if (client !== undefined || connecting !== undefined || closed) return;
    connecting = (async () => {
      const connection = await pool.connect();
      connection.on('error', () => {
        if (client === connection) client = undefined;
        connection.release(true);
      });
      connection.on('notification', deliver);
      await connection.query(`LISTEN ${RELEASE_CHANNEL}`);
      if (closed) connection.release(true);
      else client = connection;
    })()
      .catch(() => {
        // Unreachable database: blocked acquires keep polling; retried on the next subscription.
      })
      .finally(() => {
        connecting = undefined;
      });
  };

  return {
    onRelease(listener) {
      listeners.add(listener);
      listen();
      return () => {
        listeners.delete(listener);
      };
    },
    async close() {
      closed = true;
      await connecting;
      // Destroyed rather than returned: a pooled connection must not keep LISTENing.
      client?.release(true);
      client = undefined;
    },
  };
}

function ignoreConnectionError(): void {
  // The failed query (if any) rejects with the same error; see `guarded`.
}

/**
 * The pool as Kysely sees it. A connection lost while checked out emits
 * `error` on its client besides failing the running query; unheard, that
 * event would crash the process, so each client gets a listener (the query's
 * rejection is what reports the failure). A pool the caller gave us is not
 * ended by `close()`: the caller made it, the caller ends it.
 */
function guarded(pool: pg.Pool, owned: boolean): PostgresPool {
  const listening = new WeakSet<pg.PoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      if (!listening.has(client)) {
        listening.add(client);
        client.on('error', ignoreConnectionError);
      }
      return client;
    },
    end: () => (owned ? pool.end() : Promise.resolve()),
  };
}
