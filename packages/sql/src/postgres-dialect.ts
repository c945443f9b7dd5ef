// What PostgreSQL needs beyond the shared queries, with no driver imported:
// `postgresDialectInfo` (locks, collation, which errors mean "unavailable",
// release announcements) and Kysely's PostgreSQL dialect pinned to READ
// COMMITTED. The node-postgres entry (`postgres.ts`) wires a `pg.Pool` into
// them; another driver with a pg-compatible pool could do the same.
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
import {
  CompiledQuery,
  PostgresDialect,
  PostgresDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type PostgresDialectConfig,
} from 'kysely';
import type { SqlDialectInfo } from './metadata.js';

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

/**
 * Kysely's PostgreSQL dialect, with transactions pinned to READ COMMITTED
 * (see the top of this file) whatever the server's
 * `default_transaction_isolation` says.
 */
export class ReadCommittedPostgresDialect extends PostgresDialect {
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
