// `MetadataStore` on a Cloudflare Durable Object's SQLite storage: the
// metadata store of attache on Workers. A Durable Object is one
// single-threaded instance with its own SQLite database, which is what the
// engine needs: atomic multi-statement transactions and one winner per lease
// (D1 has no interactive transactions). The engine therefore runs inside the
// object (see apps/cloudflare-worker), and this store reaches the database
// through `ctx.storage`:
//
// - statements through `storage.sql.exec` (synchronous; Kysely compiles them
//   with its SQLite dialect, so schema, queries and migrations are the same
//   as `@attache/sql/sqlite`'s);
// - transactions through `storage.transaction(async () => …)`, which commits
//   when the callback resolves and rolls back when it throws, across awaits.
//   workerd refuses `BEGIN`/`SAVEPOINT`/`COMMIT` statements, and holds other
//   events of the object back while a transaction runs, so transactions also
//   run one at a time.
//
// No Node or Workers types are imported: the storage is described by the
// structural types below, so this entry builds and loads anywhere.
import type { MetadataStore } from '@attache/core';
import {
  CompiledQuery,
  Kysely,
  SqliteAdapter,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type SchemaMetadata,
  type TableMetadata,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely';
import { createSqlMetadata, type SqlDialectInfo } from './metadata.js';
import type { AttacheDatabase } from './schema.js';

const WRITES = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode']);

/** The values `SqlStorage.exec` binds and returns. */
export type DurableObjectSqlValue = ArrayBuffer | string | number | null;

/** The part of a Durable Object's `SqlStorageCursor` this store uses. */
export interface DurableObjectSqlCursor {
  toArray(): Record<string, DurableObjectSqlValue>[];
}

/** The part of a SQLite-backed Durable Object's `ctx.storage` this store uses. */
export interface DurableObjectSqlStorage {
  sql: { exec(query: string, ...bindings: DurableObjectSqlValue[]): DurableObjectSqlCursor };
  transaction<T>(closure: () => Promise<T>): Promise<T>;
}

/** workerd's SQLite errors carry no code; these messages mean storage is out of reach or full. */
const UNAVAILABLE = /SQLITE_(BUSY|FULL|IOERR)|database or disk is full|storage.*(reset|overloaded|unavailable)|Durable Object.*(reset|overloaded)/i;

export const durableObjectDialectInfo: SqlDialectInfo = {
  name: 'durableObject',
  nameCollation: null,
  // Transactions run one at a time in the object.
  lockKeyForUpdate: false,
  isUnavailable: (error) => UNAVAILABLE.test(String((error as { message?: unknown } | null)?.message ?? '')),
};

/**
 * The metadata store on `storage` (`ctx.storage` of a Durable Object class
 * declared with `new_sqlite_classes`). Call `migrate()` once when the object
 * starts, inside `ctx.blockConcurrencyWhile`.
 */
export function durableObjectMetadata(storage: DurableObjectSqlStorage): MetadataStore {
  const db = new Kysely<AttacheDatabase>({ dialect: new DurableObjectSqlDialect(storage) });
  return createSqlMetadata(db, durableObjectDialectInfo, {
    runTransaction: (body) => storage.transaction(body),
  });
}

class DurableObjectSqlDialect implements Dialect {
  readonly #storage: DurableObjectSqlStorage;

  constructor(storage: DurableObjectSqlStorage) {
    this.#storage = storage;
  }

  createAdapter() {
    // Not transactional DDL: Kysely's migrator then runs without `begin`, which workerd refuses.
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    return new DurableObjectSqlDriver(this.#storage);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    // `any`: Kysely's own signature for introspectors.
    return new TableNamesIntrospector(db);
  }
}

/**
 * Table names only, from `sqlite_master`: all Kysely's migrator asks. (Its
 * SQLite introspector also reads `pragma_table_info`, which workerd refuses
 * with SQLITE_AUTH.)
 */
class TableNamesIntrospector implements DatabaseIntrospector {
  // `any`: the introspector reads tables outside attache's schema type.
  readonly #db: Kysely<any>;

  constructor(db: Kysely<any>) {
    this.#db = db;
  }

  async getSchemas(): Promise<SchemaMetadata[]> {
    return [];
  }

  async getTables(): Promise<TableMetadata[]> {
    const rows = await this.#db
      .selectFrom('sqlite_master')
      .select('name')
      .where('type', '=', 'table')
      .execute();
    return rows.map((row: { name: string }) => ({ name: row.name, isView: false, columns: [] }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

class DurableObjectSqlDriver implements Driver {
  readonly #connection: DatabaseConnection;

  constructor(storage: DurableObjectSqlStorage) {
    this.#connection = {
      async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
        const cursor = storage.sql.exec(query.sql, ...query.parameters.map(bindable));
        const rows = cursor.toArray() as R[];
        if (!WRITES.has(query.query.kind)) return { rows };
        // `rowsWritten` also counts index entries: SQLite's own count of the rows changed.
        const changed = storage.sql.exec('select changes() as changed').toArray()[0]?.changed;
        return { rows, numAffectedRows: BigInt(Number(changed ?? 0)) };
      },
      // eslint-disable-next-line require-yield -- the store never streams query results
      async *streamQuery() {
        throw new Error('durableObjectMetadata does not stream query results');
      },
    };
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }

  async beginTransaction(): Promise<void> {
    throw new Error('durableObjectMetadata runs transactions through storage.transaction(), not Kysely');
  }

  async commitTransaction(): Promise<void> {
    throw new Error('durableObjectMetadata runs transactions through storage.transaction(), not Kysely');
  }

  async rollbackTransaction(): Promise<void> {
    throw new Error('durableObjectMetadata runs transactions through storage.transaction(), not Kysely');
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {}
}

function bindable(value: unknown): DurableObjectSqlValue {
  if (value === null || typeof value === 'string' || typeof value === 'number' || value instanceof ArrayBuffer) return value;
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return value.slice().buffer;
  throw new TypeError(`durableObjectMetadata cannot bind a ${typeof value}`);
}
