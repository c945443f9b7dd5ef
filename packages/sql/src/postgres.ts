// `MetadataStore` on PostgreSQL through node-postgres (`pg`): the
// distributed setup, where any number of server processes share one
// database. Same schema, migrations and queries as SQLite; what differs is
// in `postgresDialectInfo` below.
//
// Concurrency. Transactions run at READ COMMITTED, where every statement
// sees what was committed when it started. That is enough because every
// read-modify-write of a key happens under that key's lock (`keyLock`):
// `lockKey` takes the lock and only then reads, in a new statement, so it
// sees the previous holder's commit; lease reads and updates take their
// key's lock too (metadata.ts). A stricter level would add nothing but
// serialization failures: under REPEATABLE READ the read after the lock
// would still see the snapshot taken before it.
//
// The key lock is `pg_advisory_xact_lock(hashtextextended(<length of
// namespace>:<namespace><key>, 0))` rather than inserting a missing key row and then
// `select … for update`: it locks a key whose row does not exist yet
// without writing anything (a plain lookup of an unknown key leaves no row
// behind), needs no second round of "insert, conflict, select", and is
// released by commit or rollback, so it cannot leak. Two keys hashing to the
// same 64-bit value would only wait for each other, never corrupt state.
// The length prefix keeps ("ab", "c") and ("a", "bc") apart without a
// separator character (PostgreSQL text cannot hold NUL).
//
// A transaction lock (`txnLock`, same mechanism on `'txn:' || txn_id`) is
// taken before any key lock by every call that may lock several keys of one
// attache transaction (MetadataTx.lockTxn). Without it, two releases of one
// multi-key transaction each locked their own key first and then the other's:
// a deadlock, which PostgreSQL broke by failing one of them.
import type { MetadataStore } from '@attache/core';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  PostgresDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type PostgresDialectConfig,
  type PostgresPool,
} from 'kysely';
import pg from 'pg';
import { createSqlMetadata, type ReleaseNotifications, type SqlDialectInfo } from './metadata.js';
import type { AttacheDatabase } from './schema.js';

export type PostgresMetadataOptions =
  /** Opens a pool of at most `max` connections (default 10); `close()` ends it. */
  | { connectionString: string; max?: number }
  /** Uses a pool you made; `close()` leaves it open for you to end. */
  | { pool: pg.Pool };

const DEFAULT_POOL_SIZE = 10;

// Node's socket errors, on the error itself or on an AggregateError of
// several addresses tried.
const UNAVAILABLE_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
// SQLSTATE: 08 connection exceptions, 53 insufficient resources (too many
// connections, disk full, out of memory), 57P01-57P03 server shutting down
// or starting, 55P03 lock timeout. 40001/40P01 (serialization failure,
// deadlock) are surfaced, not retried here: the engine's callbacks may have
// done work outside the database, and the client retries a 503 anyway.
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[123]|55P03|40001|40P01)$/;
// node-postgres' own errors for a lost or never made connection carry no code.
const UNAVAILABLE_PG_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

function isUnavailable(error: unknown): boolean {
  for (let depth = 0, current = error; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
    if (UNAVAILABLE_PG_MESSAGE.test(current.message)) return true;
    if (current instanceof AggregateError && current.errors.some((inner) => isUnavailable(inner))) return true;
    current = current.cause;
  }
  return false;
}

/** NOTIFY channel of key releases (payload: JSON `{ namespace, key }`), delivered when the releasing transaction commits. */
export const RELEASE_CHANNEL = 'attache_key_released';

export const postgresDialectInfo: SqlDialectInfo = {
  name: 'postgres',
  // The database's default collation may be linguistic (en_US: "a" < "B");
  // names must sort by code point on every store.
  nameCollation: 'C',
  lockKeyForUpdate: true,
  keyLock: (namespace, key) =>
    sql`select pg_advisory_xact_lock(hashtextextended(length(${namespace}) || ':' || ${namespace} || ${key}, 0))`,
  // Same 64-bit lock space as the key locks; key lock inputs start with a
  // digit (the length prefix), these with "txn:", so only a hash collision
  // could make the two meet, and that would only make them wait.
  txnLock: (txnId) => sql`select pg_advisory_xact_lock(hashtextextended('txn:' || ${txnId}, 0))`,
  isUnavailable,
  announceRelease: (namespace, key) => sql`select pg_notify(${RELEASE_CHANNEL}, ${JSON.stringify({ namespace, key })})`,
};

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
  return createSqlMetadata(kysely, postgresDialectInfo, releaseNotifications(pool));
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

/**
 * Kysely's PostgreSQL dialect, with transactions pinned to READ COMMITTED
 * (see the top of this file) whatever the server's
 * `default_transaction_isolation` says.
 */
class ReadCommittedPostgresDialect extends PostgresDialect {
  readonly #config: PostgresDialectConfig;

  constructor(config: PostgresDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ReadCommittedPostgresDriver(this.#config);
  }
}

class ReadCommittedPostgresDriver extends PostgresDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin isolation level read committed'));
  }
}
