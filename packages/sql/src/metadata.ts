// The `MetadataStore` port on Kysely, shared by every SQL dialect. What
// differs between SQLite and PostgreSQL lives in `SqlDialectInfo` and nowhere
// else; the schema, queries and row mapping below are the same code.
import type {
  AttachmentRow,
  AttachmentRowState,
  AttachmentScope,
  KeyRow,
  LeaseRow,
  LeaseState,
  MetadataStore,
  MetadataTransactionOptions,
  MetadataTx,
  NotOnKeyQuery,
  TxnRow,
  TxnState,
  UploadPartRow,
  UploadRow,
} from '@attache/core';
import { AttacheError, STAGING_PREFIX, type SharedSync } from '@attache/core';
import { CompiledQuery, Migrator, sql, type Insertable, type Kysely, type QueryResult, type RawBuilder, type Selectable } from 'kysely';
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE, attacheMigrationProvider } from './migrations.js';
import { prepared } from './prepared.js';
import type {
  AttacheDatabase,
  AttachmentsTable,
  KeysTable,
  LeasesTable,
  TxnsTable,
  UploadPartsTable,
  UploadsTable,
} from './schema.js';

/**
 * Fixed values go into the SQL as literals, not bound parameters: SQLite
 * prepares a statement again on every run when a bound value could change
 * its plan — a state that decides whether a partial index applies (the name
 * indexes are partial on `state`), or the LIMIT of an ordered look-up — and
 * that made each such look-up 10–15 µs slower (measured with SQLite 3.53,
 * where the look-up itself takes 2–5 µs). Limits that vary (paging) stay
 * parameters.
 */
const COMMITTED = sql.lit('committed');
const ACTIVE = sql.lit('active');
const RECEIVING = sql.lit('receiving');
const ONE_ROW = sql.lit(1);

export interface SqlDialectInfo {
  name: string;
  /**
   * Collation that orders attachment names by code point (= UTF-8 byte
   * order), or null when the column's default already does (SQLite BINARY).
   */
  nameCollation: string | null;
  /**
   * Whether `lockKey` must lock the key row (`select … for update`). False
   * where the dialect already runs one write transaction at a time (SQLite).
   */
  lockKeyForUpdate: boolean;
  /**
   * A statement that takes a transaction-scoped, exclusive lock on one key,
   * also while its row does not exist yet (`for update` locks no row then).
   * When given, `lockKey` runs it first. (The engine takes a key's lock
   * before it reads or writes anything of that key, so this one lock
   * orders every change of a key.) Absent where transactions already run
   * one at a time (SQLite).
   */
  keyLock?: (namespace: string, key: string) => RawBuilder<unknown>;
  /**
   * A statement that takes a transaction-scoped, exclusive lock on one
   * attache transaction id (its row may not exist yet). Absent where
   * transactions already run one at a time (SQLite).
   */
  txnLock?: (txnId: string) => RawBuilder<unknown>;
  /** Whether a driver error means the database is out of reach or busy (→ 503 `unavailable`), not a bug. */
  isUnavailable(error: unknown): boolean;
  /** A statement that tells other processes, on commit, that a key was released (PostgreSQL NOTIFY). */
  announceRelease?: (namespace: string, key: string) => RawBuilder<unknown>;
}

/** Cross-process release notifications (see `MetadataStore.onRelease`). */
export interface ReleaseNotifications {
  onRelease(listener: (namespace: string, key: string) => void): () => void;
  close(): Promise<void>;
}

/** A driver error that means "retry later" (see `isUnavailable`) as 503 `unavailable`, naming a full disk as such. */
function unavailable(error: unknown): AttacheError {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  // SQLITE_FULL; PostgreSQL's 53100 disk_full.
  if (code.startsWith('SQLITE_FULL') || code === '53100') {
    return new AttacheError('unavailable', `the metadata database's disk is full (${code}); retry later`, {
      retryAfterSeconds: 10,
      cause: error,
    });
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new AttacheError('unavailable', `the metadata database cannot read or write its disk (${code}); retry later`, {
      retryAfterSeconds: 10,
      cause: error,
    });
  }
  return new AttacheError('unavailable', 'the metadata database is busy or out of reach', { retryAfterSeconds: 1, cause: error });
}

// Bound parameters per statement stay well under SQLite's oldest limit (999).
const MAX_PARAMETERS = 500;

/**
 * Group commit, for databases that run one write transaction at a time
 * (SQLite): the logical transactions waiting for the database run one after
 * another inside ONE database transaction, each in a savepoint (a failing
 * one rolls back alone), and share its commit, so one fsync acknowledges
 * them all. None of them is answered before that commit is durable; when it
 * fails, all of them fail.
 */
export interface GroupCommitOptions {
  /** Whether the database still has a transaction open: SQLite rolls back on its own after SQLITE_FULL or SQLITE_IOERR. */
  inTransaction(): boolean;
  /** Most logical transactions per commit. Default 64. */
  maxBatch?: number;
  /**
   * Lets the event loop run once (Node: `setImmediate`) before a batch
   * commits, so transactions of requests whose bytes arrived meanwhile join
   * it. Without it a batch takes only what was queued when it began.
   */
  yieldToEventLoop?: () => Promise<void>;
  /**
   * Makes commits durable when the database does not at COMMIT (SQLite with
   * `synchronous = NORMAL`): a batch's members are answered only once this
   * resolves after their commit, so nobody learns of a commit (theirs or,
   * through a read, anyone's) before it is durable. A rejection fails the
   * batch's members and every transaction after it: the store is broken
   * until restarted.
   */
  durability?: SharedSync;
}

export interface SqlMetadataOptions {
  /** Cross-process release notifications (PostgreSQL LISTEN/NOTIFY). */
  notifications?: ReleaseNotifications;
  /**
   * Runs `body` in a database transaction opened by the host rather than by
   * SQL (a Durable Object's `storage.transaction()`: it commits when `body`
   * resolves, rolls back when it throws). The queries of `body` then go
   * through `db` itself.
   */
  runTransaction?: <T>(body: () => Promise<T>) => Promise<T>;
  /** Group commit; only for a database that runs one write transaction at a time (SQLite). */
  groupCommit?: GroupCommitOptions;
}

const DEFAULT_MAX_BATCH = 64;

export function createSqlMetadata(
  db: Kysely<AttacheDatabase>,
  dialect: SqlDialectInfo,
  options: SqlMetadataOptions = {},
): MetadataStore {
  const { notifications } = options;
  const statements = hotStatements(db, dialect);
  const running = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  /** A driver error that means "retry later" as 503 `unavailable`; anything else unchanged. */
  const storeError = (error: unknown): unknown =>
    !(error instanceof AttacheError) && dialect.isUnavailable(error) ? unavailable(error) : error;

  const runAlone = <T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> => {
    // What failed inside the transaction. Kysely then rolls back, and when
    // that fails too (SQLite has already rolled back after SQLITE_FULL or
    // SQLITE_IOERR: "cannot rollback - no transaction is active"; a dead
    // PostgreSQL connection), the rollback's error would replace this one.
    let failure: { error: unknown } | undefined;
    return db
      .transaction()
      .execute(async (trx) => {
        const handle = createTx(trx, dialect, statements);
        try {
          return await fn(handle.tx);
        } catch (error) {
          failure = { error };
          throw error;
        } finally {
          handle.end();
        }
      })
      .catch((thrown: unknown) => {
        throw storeError(failure === undefined ? thrown : failure.error);
      });
  };

  const runInHostTransaction = <T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> =>
    options.runTransaction!(async () => {
      const handle = createTx(db, dialect, statements);
      try {
        return await fn(handle.tx);
      } finally {
        handle.end();
      }
    }).catch((thrown: unknown) => {
      throw storeError(thrown);
    });

  const run: <T>(fn: (tx: MetadataTx) => Promise<T>, durable: boolean) => Promise<T> =
    options.runTransaction !== undefined
      ? runInHostTransaction
      : options.groupCommit === undefined
        ? runAlone
        : groupCommitter(db, dialect, statements, options.groupCommit, storeError);

  return {
    transaction<T>(fn: (tx: MetadataTx) => Promise<T>, transactionOptions?: MetadataTransactionOptions): Promise<T> {
      if (closing) {
        return Promise.reject(new AttacheError('unavailable', 'the metadata store is closed', { retryAfterSeconds: 1 }));
      }
      // Only group commit separates committed from durable; elsewhere every commit is durable when it returns.
      const result = run(fn, transactionOptions?.durable !== false);
      running.add(result);
      const forget = (): void => {
        running.delete(result);
      };
      result.then(forget, forget);
      return result;
    },

    async migrate(): Promise<void> {
      const migrator = new Migrator({
        db,
        provider: attacheMigrationProvider,
        migrationTableName: MIGRATION_TABLE,
        migrationLockTableName: MIGRATION_LOCK_TABLE,
      });
      const { error, results } = await migrator.migrateToLatest();
      if (error !== undefined) {
        const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'setup';
        throw new Error(`${dialect.name}Metadata: migration ${failed} failed`, { cause: error });
      }
      // Migrations commit outside group commit: make them durable too.
      await options.groupCommit?.durability?.sync();
    },

    ...(notifications === undefined ? {} : { onRelease: (listener) => notifications.onRelease(listener) }),
    holdsBlobData: true,

    close(): Promise<void> {
      // Transactions already running finish first; the pool closes once.
      closing ??= Promise.allSettled([...running])
        .then(() => notifications?.close())
        .then(() => options.groupCommit?.durability?.close())
        .then(() => db.destroy());
      return closing;
    },
  };
}

interface QueuedTransaction {
  fn: (tx: MetadataTx) => Promise<unknown>;
  /** Answered only once the batch's commit is durable; false: at commit (see `MetadataTransactionOptions`). */
  durable: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** The statements that frame a batch and its members, compiled once (as prepared.ts does for the rest). */
const BATCH = {
  begin: CompiledQuery.raw('begin immediate'),
  savepoint: CompiledQuery.raw('savepoint attache_member'),
  release: CompiledQuery.raw('release attache_member'),
  rollbackTo: CompiledQuery.raw('rollback to attache_member'),
  commit: CompiledQuery.raw('commit'),
  rollback: CompiledQuery.raw('rollback'),
};

/** Runs logical transactions in shared database transactions (see `GroupCommitOptions`). */
function groupCommitter(
  db: Kysely<AttacheDatabase>,
  dialect: SqlDialectInfo,
  statements: HotStatements,
  options: GroupCommitOptions,
  storeError: (error: unknown) => unknown,
): <T>(fn: (tx: MetadataTx) => Promise<T>, durable: boolean) => Promise<T> {
  const maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
  const { durability } = options;
  const queue: QueuedTransaction[] = [];
  let draining = false;
  /** Set when a commit could not be made durable: what it committed may be lost, so nothing more is answered. */
  let broken: AttacheError | undefined;

  /** Runs queued transactions until the queue is empty, one database transaction per batch. */
  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) {
        // One batch per connection lease, so migrations and other users of
        // the connection take their turn between batches.
        await db.connection().execute((connection) => runBatch(connection));
      }
    } catch (error) {
      // The connection could not be had (the store is closing): nothing queued can run.
      for (const waiting of queue.splice(0)) waiting.reject(storeError(error));
    } finally {
      draining = false;
    }
  }

  async function runBatch(connection: Kysely<AttacheDatabase>): Promise<void> {
    if (broken) {
      for (const waiting of queue.splice(0)) waiting.reject(broken);
      return;
    }
    try {
      await connection.executeQuery(BATCH.begin);
    } catch (error) {
      // The write lock was not granted within busy_timeout: everyone waiting would wait as long.
      for (const waiting of queue.splice(0)) waiting.reject(storeError(error));
      return;
    }
    const succeeded: Array<{ member: QueuedTransaction; value: unknown }> = [];
    let yielded = false;
    let member: QueuedTransaction | undefined;
    try {
      while (succeeded.length < maxBatch) {
        member = queue.shift();
        if (member === undefined) {
          // Once: requests whose I/O arrived while this batch ran may join its commit.
          if (yielded || options.yieldToEventLoop === undefined) break;
          yielded = true;
          await options.yieldToEventLoop();
          continue;
        }
        await connection.executeQuery(BATCH.savepoint);
        const handle = createTx(connection, dialect, statements);
        let outcome: { value: unknown } | { error: unknown };
        try {
          outcome = { value: await member.fn(handle.tx) };
        } catch (error) {
          outcome = { error };
        } finally {
          handle.end();
        }
        if ('value' in outcome) {
          await connection.executeQuery(BATCH.release);
          succeeded.push({ member, value: outcome.value });
        } else {
          if (!options.inTransaction()) throw outcome.error; // SQLite rolled back the whole batch.
          await connection.executeQuery(BATCH.rollbackTo);
          await connection.executeQuery(BATCH.release);
          member.reject(storeError(outcome.error));
        }
        member = undefined;
      }
      await connection.executeQuery(BATCH.commit);
    } catch (error) {
      // The batch's writes are lost (SQLite aborted it, or the commit failed): no member committed.
      if (options.inTransaction()) await connection.executeQuery(BATCH.rollback).catch(() => {});
      const failed = storeError(error);
      member?.reject(failed);
      for (const done of succeeded) done.member.reject(failed);
      return;
    }
    // Members that a later durable commit vouches for are answered at once.
    const toSync = durability === undefined ? [] : succeeded.filter((done) => done.member.durable);
    for (const done of succeeded) if (durability === undefined || !done.member.durable) done.member.resolve(done.value);
    if (durability === undefined || toSync.length === 0) return;
    // Not awaited: the next batch runs while this one's fsync does, and may share it.
    durability.sync().then(
      () => {
        for (const done of toSync) done.member.resolve(done.value);
      },
      (error: unknown) => {
        broken ??= new AttacheError('unavailable', 'the metadata store could not make a commit durable (fsync failed); restart the server', {
          retryAfterSeconds: 10,
          cause: error,
        });
        for (const done of toSync) done.member.reject(broken);
      },
    );
  }

  return <T>(fn: (tx: MetadataTx) => Promise<T>, durable: boolean): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ fn, durable, resolve: resolve as (value: unknown) => void, reject });
      if (!draining) {
        draining = true;
        void drain();
      }
    });
}

/** Columns of `attache_attachments` in the order `insertAttachment` passes them. */
const ATTACHMENT_COLUMNS = [
  'version_id',
  'attachment_id',
  'namespace',
  'key',
  'name',
  'state',
  'txn_id',
  'size',
  'content_type',
  'extension',
  'crc32',
  'sha256',
  'blob_path',
  'key_id',
  'created_at',
  'updated_at',
] as const;

/**
 * The statements a lease cycle runs, each compiled once per store
 * (prepared.ts): every acquire, upload, release and read goes through them.
 * Statements whose shape depends on their arguments (patches, lists, pages)
 * are built as they are needed.
 */
function hotStatements(db: Kysely<AttacheDatabase>, dialect: SqlDialectInfo) {
  const findVisible = (column: 'name' | 'attachment_id', ofTxn: boolean) =>
    prepared(ofTxn ? 4 : 3, (namespace: string, key: string, value: string, txnId?: string) =>
      db
        .selectFrom('attache_attachments')
        .selectAll()
        .where('namespace', '=', namespace)
        .where('key', '=', key)
        .where(column, '=', value)
        .where((eb) => (ofTxn ? eb.or([eb('state', '=', COMMITTED), eb('txn_id', '=', txnId!)]) : eb('state', '=', COMMITTED)))
        .orderBy(pendingRank('pending_first'))
        .limit(ONE_ROW)
        .compile(),
    );
  return {
    keyRow: prepared(2, (namespace: string, key: string) => {
      const query = db.selectFrom('attache_keys').selectAll().where('namespace', '=', namespace).where('key', '=', key);
      return (dialect.lockKeyForUpdate ? query.forUpdate() : query).compile();
    }),
    putKey: prepared(4, (namespace: string, key: string, fencingToken: number, leaseId: string | null) =>
      db
        .insertInto('attache_keys')
        .values({ namespace, key, fencing_token: fencingToken, lease_id: leaseId })
        .onConflict((conflict) => conflict.columns(['namespace', 'key']).doUpdateSet({ fencing_token: fencingToken, lease_id: leaseId }))
        .compile(),
    ),
    getLease: prepared(1, (leaseId: string) => db.selectFrom('attache_leases').selectAll().where('lease_id', '=', leaseId).compile()),
    insertLease: prepared(9, (...values: LeaseValues) =>
      db
        .insertInto('attache_leases')
        .values({
          lease_id: values[0],
          namespace: values[1],
          key: values[2],
          txn_id: values[3],
          owner: values[4],
          fencing_token: values[5],
          expires_at: values[6],
          state: values[7],
          created_at: values[8],
        })
        .compile(),
    ),
    activeLeasesOfTxn: prepared(1, (txnId: string) =>
      db
        .selectFrom('attache_leases')
        .selectAll()
        .where('txn_id', '=', txnId)
        .where('state', '=', ACTIVE)
        .orderBy('created_at')
        .orderBy('lease_id')
        .compile(),
    ),
    getTxn: prepared(1, (txnId: string) => db.selectFrom('attache_txns').selectAll().where('txn_id', '=', txnId).compile()),
    insertTxn: prepared(4, (txnId: string, state: string, createdAt: number, updatedAt: number) =>
      db.insertInto('attache_txns').values({ txn_id: txnId, state, created_at: createdAt, updated_at: updatedAt }).compile(),
    ),
    endTxn: prepared(3, (txnId: string, state: string, updatedAt: number) =>
      db.updateTable('attache_txns').set({ state, updated_at: updatedAt }).where('txn_id', '=', txnId).compile(),
    ),
    findCommittedByName: findVisible('name', false),
    findVisibleByName: findVisible('name', true),
    findCommittedById: findVisible('attachment_id', false),
    findVisibleById: findVisible('attachment_id', true),
    stagedOfTxn: prepared(1, (txnId: string) =>
      db
        .selectFrom('attache_attachments')
        .selectAll()
        .where('txn_id', '=', txnId)
        .where('state', '<>', COMMITTED)
        .orderBy(collatedColumn(dialect, 'namespace'))
        .orderBy(collatedColumn(dialect, 'key'))
        .orderBy(collatedColumn(dialect, 'name'))
        .compile(),
    ),
    insertAttachment: prepared(ATTACHMENT_COLUMNS.length, (...values: unknown[]) =>
      db
        .insertInto('attache_attachments')
        // Markers at compile time; the row's values, in ATTACHMENT_COLUMNS order, at each run.
        .values(Object.fromEntries(ATTACHMENT_COLUMNS.map((column, index) => [column, values[index]])) as Insertable<AttacheDatabase['attache_attachments']>)
        .compile(),
    ),
    deleteAttachment: prepared(1, (versionId: string) =>
      db.deleteFrom('attache_attachments').where('version_id', '=', versionId).compile(),
    ),
    putBlobData: prepared(4, (path: string, data: Uint8Array, size: number, createdAt: number) =>
      db
        .insertInto('attache_blob_data')
        .values({ path, data, size, created_at: createdAt })
        .onConflict((conflict) => conflict.column('path').doUpdateSet({ data, size, created_at: createdAt }))
        .compile(),
    ),
    getBlobData: prepared(1, (path: string) =>
      db.selectFrom('attache_blob_data').select(['data', 'created_at']).where('path', '=', path).compile(),
    ),
    blobDataExists: prepared(1, (path: string) => db.selectFrom('attache_blob_data').select('path').where('path', '=', path).compile()),
    deleteBlobData: prepared(1, (path: string) => db.deleteFrom('attache_blob_data').where('path', '=', path).compile()),
    moveBlobData: prepared(2, (from: string, to: string) =>
      db.updateTable('attache_blob_data').set({ path: to }).where('path', '=', from).compile(),
    ),
  };
}

type LeaseValues = [string, string, string, string, string, number, number, string, number];
type HotStatements = ReturnType<typeof hotStatements>;

/** Rows a statement changed (PostgreSQL and SQLite both report it). */
const changed = (result: QueryResult<unknown>): number => Number(result.numAffectedRows ?? 0);

/** Text ordering by code point on every dialect (see `nameCollation`). */
function collatedColumn(dialect: SqlDialectInfo, column: 'namespace' | 'key' | 'name' | 'path') {
  return dialect.nameCollation === null ? sql.ref(column) : sql`${sql.ref(column)} collate ${sql.id(dialect.nameCollation)}`;
}

function createTx(trx: Kysely<AttacheDatabase>, dialect: SqlDialectInfo, statements: HotStatements): { tx: MetadataTx; end(): void } {
  let open = true;
  // Every query goes through `q()`, so a handle that leaks past its
  // transaction fails loudly instead of writing outside any transaction.
  const q = (): Kysely<AttacheDatabase> => {
    if (!open) throw new Error(`${dialect.name}Metadata: transaction has already ended`);
    return trx;
  };
  const collated = (column: 'namespace' | 'key' | 'name' | 'path') => collatedColumn(dialect, column);
  const byName = collated('name');
  const byPath = collated('path');
  const takeKeyLock = async (namespace: string, key: string): Promise<void> => {
    if (dialect.keyLock) await dialect.keyLock(namespace, key).execute(q());
  };

  /** Committed rows that key rotation still has to re-encrypt (`MetadataTx.listNotOnKey`). */
  const notOnKey = (query: NotOnKeyQuery) =>
    q()
      .selectFrom('attache_attachments')
      .where('state', '=', COMMITTED)
      .where((eb) =>
        query.includePlaintext
          ? eb.or([eb('key_id', 'is', null), eb('key_id', '<>', query.keyId)])
          : eb.and([eb('key_id', 'is not', null), eb('key_id', '<>', query.keyId)]),
      );

  /** The committed row of a name or id in one key, or the row `txnId` staged for it (which wins). */
  const findVisibleVersion = async (
    scope: AttachmentScope,
    column: 'name' | 'attachment_id',
    value: string,
    txnId: string | null,
  ): Promise<AttachmentRow | undefined> => {
    const { namespace, key } = scope;
    const result =
      column === 'name'
        ? txnId === null
          ? await statements.findCommittedByName.run(q(), namespace, key, value)
          : await statements.findVisibleByName.run(q(), namespace, key, value, txnId)
        : txnId === null
          ? await statements.findCommittedById.run(q(), namespace, key, value)
          : await statements.findVisibleById.run(q(), namespace, key, value, txnId);
    const row = result.rows[0];
    return row && toAttachmentRow(row);
  };

  const tx: MetadataTx = {
    async lockKey(namespace, key) {
      // The lock first, then the read in its own statement: a statement's
      // snapshot is taken when it starts, so only a read that starts after
      // the lock is granted sees the previous holder's commit.
      await takeKeyLock(namespace, key);
      const row = (await statements.keyRow.run(q(), namespace, key)).rows[0];
      return row && toKeyRow(row);
    },
    async putKey(row) {
      await statements.putKey.run(q(), row.namespace, row.key, row.fencingToken, row.leaseId);
    },

    async getLease(leaseId) {
      const row = (await statements.getLease.run(q(), leaseId)).rows[0];
      return row && toLeaseRow(row);
    },
    async insertLease(row) {
      await statements.insertLease.run(
        q(),
        row.leaseId,
        row.namespace,
        row.key,
        row.txnId,
        row.owner,
        row.fencingToken,
        row.expiresAt,
        row.state,
        row.createdAt,
      );
    },
    async updateLease(leaseId, patch) {
      const set = definedFields({ expires_at: patch.expiresAt, state: patch.state });
      if (Object.keys(set).length === 0) return;
      await q().updateTable('attache_leases').set(set).where('lease_id', '=', leaseId).execute();
    },
    async listActiveLeasesOfTxn(txnId) {
      return (await statements.activeLeasesOfTxn.run(q(), txnId)).rows.map(toLeaseRow);
    },
    async listExpiredLeases(now, limit) {
      const rows = await q()
        .selectFrom('attache_leases')
        .selectAll()
        .where('state', '=', ACTIVE)
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .orderBy('lease_id')
        .limit(Math.max(0, limit))
        .execute();
      return rows.map(toLeaseRow);
    },
    async pruneLeases(before) {
      const result = await q()
        .deleteFrom('attache_leases')
        .where('state', '<>', ACTIVE)
        .where('expires_at', '<', before)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async pruneTxns(before) {
      const result = await q()
        .deleteFrom('attache_txns')
        .where('state', '<>', ACTIVE)
        .where('updated_at', '<', before)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('attache_leases').select('lease_id').whereRef('attache_leases.txn_id', '=', 'attache_txns.txn_id'))),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async lockTxn(txnId) {
      if (dialect.txnLock) await dialect.txnLock(txnId).execute(q());
    },
    async getTxn(txnId) {
      const row = (await statements.getTxn.run(q(), txnId)).rows[0];
      return row && toTxnRow(row);
    },
    async insertTxn(row) {
      await statements.insertTxn.run(q(), row.txnId, row.state, row.createdAt, row.updatedAt);
    },
    async updateTxn(txnId, patch) {
      if (patch.state !== undefined && patch.updatedAt !== undefined) {
        await statements.endTxn.run(q(), txnId, patch.state, patch.updatedAt);
        return;
      }
      const set = definedFields({ state: patch.state, updated_at: patch.updatedAt });
      if (Object.keys(set).length === 0) return;
      await q().updateTable('attache_txns').set(set).where('txn_id', '=', txnId).execute();
    },

    async listAttachments(scope, txnId) {
      const rows = await q()
        .selectFrom('attache_attachments')
        .selectAll()
        .where('namespace', '=', scope.namespace)
        .where('key', '=', scope.key)
        .where((eb) =>
          txnId === undefined
            ? eb('state', '=', COMMITTED)
            : eb.or([eb('state', '=', COMMITTED), eb('txn_id', '=', txnId)]),
        )
        .orderBy(byName)
        .orderBy(pendingRank('committed_first'))
        .execute();
      return rows.map(toAttachmentRow);
    },
    async getCommittedById(attachmentId) {
      const row = await q()
        .selectFrom('attache_attachments')
        .selectAll()
        .where('attachment_id', '=', attachmentId)
        .where('state', '=', COMMITTED)
        .limit(ONE_ROW)
        .executeTakeFirst();
      return row && toAttachmentRow(row);
    },
    ...(dialect.announceRelease === undefined
      ? {}
      : {
          announceRelease: async (namespace: string, key: string) => {
            await dialect.announceRelease!(namespace, key).execute(q());
          },
        }),
    findByName: (scope, name, txnId) => findVisibleVersion(scope, 'name', name, txnId),
    findById: (scope, attachmentId, txnId) => findVisibleVersion(scope, 'attachment_id', attachmentId, txnId),
    async listStagedOfTxn(txnId) {
      return (await statements.stagedOfTxn.run(q(), txnId)).rows.map(toAttachmentRow);
    },
    async insertAttachment(row) {
      // In ATTACHMENT_COLUMNS order.
      await statements.insertAttachment.run(
        q(),
        row.versionId,
        row.attachmentId,
        row.namespace,
        row.key,
        row.name,
        row.state,
        row.txnId,
        row.size,
        row.contentType,
        row.extension,
        row.crc32,
        row.sha256,
        row.blobPath,
        row.keyId,
        row.createdAt,
        row.updatedAt,
      );
    },

    async updateAttachment(versionId, patch) {
      const set = definedFields({
        state: patch.state,
        txn_id: patch.txnId,
        blob_path: patch.blobPath,
        updated_at: patch.updatedAt,
        created_at: patch.createdAt,
      });
      if (Object.keys(set).length === 0) return;
      await q().updateTable('attache_attachments').set(set).where('version_id', '=', versionId).execute();
    },
    async deleteAttachment(versionId) {
      await statements.deleteAttachment.run(q(), versionId);
    },
    async listUnpromoted(limit) {
      // Staged paths (core's paths.ts): the flat staging directory, or the
      // per-key `.staging` of earlier versions (a reserved key segment, so
      // only staged paths contain it). No LIKE wildcard in either pattern.
      const rows = await q()
        .selectFrom('attache_attachments')
        .selectAll()
        .where('state', '=', COMMITTED)
        .where((eb) => eb.or([eb('blob_path', 'like', `${STAGING_PREFIX}%`), eb('blob_path', 'like', '%/.staging/%')]))
        .orderBy('updated_at')
        .orderBy('version_id')
        .limit(Math.max(0, limit))
        .execute();
      return rows.map(toAttachmentRow);
    },
    async listNotOnKey(query) {
      let select = notOnKey(query);
      // Keyset paging: `>` and `order by` use the same collation, so pages neither skip nor repeat rows.
      if (query.afterVersionId !== null) select = select.where('version_id', '>', query.afterVersionId);
      const rows = await select.selectAll().orderBy('version_id').limit(Math.max(0, query.limit)).execute();
      return rows.map(toAttachmentRow);
    },
    async countNotOnKey(query) {
      const row = await notOnKey(query)
        .select((eb) => [eb.fn.countAll().as('rows'), eb.fn.sum('size').as('bytes')])
        .executeTakeFirst();
      // PostgreSQL returns counts and sums of bigint as strings, and a sum over no rows as null.
      return { rows: Number(row?.rows ?? 0), bytes: Number(row?.bytes ?? 0) };
    },
    async repointEncrypted(versionId, change) {
      const result = await q()
        .updateTable('attache_attachments')
        .set({ blob_path: change.toBlobPath, key_id: change.keyId })
        .where('version_id', '=', versionId)
        .where('state', '=', COMMITTED)
        .where('blob_path', '=', change.fromBlobPath)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async existingVersionIds(versionIds) {
      const found = new Set<string>();
      for (const batch of chunks([...new Set(versionIds)], MAX_PARAMETERS)) {
        const rows = await q().selectFrom('attache_attachments').select('version_id').where('version_id', 'in', batch).execute();
        for (const row of rows) found.add(row.version_id);
      }
      return found;
    },

    async referencedBlobPaths(paths) {
      const found = new Set<string>();
      for (const batch of chunks([...new Set(paths)], MAX_PARAMETERS)) {
        const rows = await q()
          .selectFrom('attache_attachments')
          .select('blob_path')
          .distinct()
          .where('blob_path', 'in', batch)
          .execute();
        for (const row of rows) found.add(row.blob_path);
      }
      return found;
    },

    async getUpload(uploadId) {
      const row = await q().selectFrom('attache_uploads').selectAll().where('upload_id', '=', uploadId).executeTakeFirst();
      return row && toUploadRow(row);
    },
    async insertUpload(row) {
      await q()
        .insertInto('attache_uploads')
        .values({
          upload_id: row.uploadId,
          state: row.state,
          length: row.length,
          offset: row.offset,
          crc32: row.crc32,
          name: row.name,
          content_type: row.contentType,
          metadata: row.metadata,
          namespace: row.namespace,
          key: row.key,
          lease_id: row.leaseId,
          txn_id: row.txnId,
          fencing_token: row.fencingToken,
          attachment_id: row.attachmentId,
          expires_at: row.expiresAt,
          created_at: row.createdAt,
          updated_at: row.updatedAt,
        })
        .execute();
    },
    async advanceUpload(uploadId, from, part, patch) {
      // The compare-and-set: the row moves only from the offset this writer started at.
      const result = await q()
        .updateTable('attache_uploads')
        .set({ offset: patch.offset, crc32: patch.crc32, expires_at: patch.expiresAt, updated_at: patch.updatedAt })
        .where('upload_id', '=', uploadId)
        .where('state', '=', RECEIVING)
        .where('offset', '=', from)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await q()
        .insertInto('attache_upload_parts')
        .values({ upload_id: part.uploadId, start: part.start, size: part.size, blob_path: part.blobPath, key_id: part.keyId })
        .execute();
      return true;
    },
    async updateUpload(uploadId, patch) {
      const set = definedFields({
        state: patch.state,
        attachment_id: patch.attachmentId,
        expires_at: patch.expiresAt,
        updated_at: patch.updatedAt,
      });
      if (Object.keys(set).length === 0) return;
      await q().updateTable('attache_uploads').set(set).where('upload_id', '=', uploadId).execute();
    },
    async listUploadParts(uploadId) {
      const rows = await q()
        .selectFrom('attache_upload_parts')
        .selectAll()
        .where('upload_id', '=', uploadId)
        .orderBy('start')
        .execute();
      return rows.map(toUploadPartRow);
    },
    async deleteUpload(uploadId) {
      await q().deleteFrom('attache_upload_parts').where('upload_id', '=', uploadId).execute();
      await q().deleteFrom('attache_uploads').where('upload_id', '=', uploadId).execute();
    },
    async listAbandonedUploads(now, limit) {
      const rows = await q()
        .selectFrom('attache_uploads')
        .selectAll()
        .where((eb) =>
          eb.or([
            eb('expires_at', '<=', now),
            eb.and([
              eb('state', '=', RECEIVING),
              eb('txn_id', 'is not', null),
              eb.not(
                eb.exists(
                  eb
                    .selectFrom('attache_txns')
                    .select('attache_txns.txn_id')
                    .whereRef('attache_txns.txn_id', '=', 'attache_uploads.txn_id')
                    .where('attache_txns.state', '=', 'active'),
                ),
              ),
            ]),
          ]),
        )
        .orderBy('expires_at')
        .orderBy('upload_id')
        .limit(Math.max(0, limit))
        .execute();
      return rows.map(toUploadRow);
    },

    async enqueueGarbage(paths, now) {
      // Two parameters per row.
      for (const batch of chunks([...new Set(paths)], MAX_PARAMETERS / 2)) {
        await q()
          .insertInto('attache_garbage')
          .values(batch.map((blobPath) => ({ blob_path: blobPath, enqueued_at: now })))
          .onConflict((conflict) => conflict.column('blob_path').doNothing())
          .execute();
      }
    },
    async listGarbage(limit, enqueuedBefore) {
      const rows = await q()
        .selectFrom('attache_garbage')
        .select('blob_path')
        .$if(enqueuedBefore !== undefined, (query) => query.where('enqueued_at', '<=', enqueuedBefore!))
        .orderBy('enqueued_at')
        .orderBy('blob_path')
        .limit(Math.max(0, limit))
        .execute();
      return rows.map((row) => row.blob_path);
    },
    async queuedGarbage(paths) {
      const found = new Set<string>();
      for (const batch of chunks([...new Set(paths)], MAX_PARAMETERS)) {
        const rows = await q().selectFrom('attache_garbage').select('blob_path').where('blob_path', 'in', batch).execute();
        for (const row of rows) found.add(row.blob_path);
      }
      return found;
    },
    async dequeueGarbage(paths) {
      for (const batch of chunks([...new Set(paths)], MAX_PARAMETERS)) {
        await q().deleteFrom('attache_garbage').where('blob_path', 'in', batch).execute();
      }
    },

    async putBlobData(row) {
      await statements.putBlobData.run(q(), row.path, row.data, row.data.byteLength, row.createdAt);
    },
    async getBlobData(path) {
      const row = (await statements.getBlobData.run(q(), path)).rows[0];
      return row && { path, data: row.data, createdAt: Number(row.created_at) };
    },
    async statBlobData(path) {
      const row = await q().selectFrom('attache_blob_data').select(['size', 'created_at']).where('path', '=', path).executeTakeFirst();
      return row && { path, size: Number(row.size), modifiedAt: Number(row.created_at) };
    },
    async deleteBlobData(path) {
      return changed(await statements.deleteBlobData.run(q(), path)) > 0;
    },
    async moveBlobData(from, to) {
      // A copy an interrupted promotion left at `to` would collide; it holds no other bytes.
      if ((await statements.blobDataExists.run(q(), from)).rows.length === 0) return false;
      await statements.deleteBlobData.run(q(), to);
      return changed(await statements.moveBlobData.run(q(), from, to)) > 0;
    },
    async listBlobData(prefix, afterPath, limit) {
      // A range on the primary key, not LIKE (prefixes may hold `%` or `_`): every path ≥ prefix that starts with it.
      const rows = await q()
        .selectFrom('attache_blob_data')
        .select(['path', 'size', 'created_at'])
        .where(byPath, '>=', prefix)
        .$if(afterPath !== undefined, (query) => query.where(byPath, '>', afterPath!))
        .orderBy(byPath)
        .limit(Math.max(0, limit))
        .execute();
      const found = [];
      for (const row of rows) {
        if (!row.path.startsWith(prefix)) break;
        found.push({ path: row.path, size: Number(row.size), modifiedAt: Number(row.created_at) });
      }
      return found;
    },
  };

  return {
    tx,
    end() {
      open = false;
    },
  };
}

/**
 * Orders a committed row and a pending (staged/tombstone) row of the same
 * name: committed first for listings (the engine overlays pending rows on
 * top), pending first for look-ups (the transaction's own write wins).
 */
function pendingRank(order: 'committed_first' | 'pending_first'): RawBuilder<number> {
  return order === 'committed_first'
    ? sql<number>`case when state = 'committed' then 0 else 1 end`
    : sql<number>`case when state = 'committed' then 1 else 0 end`;
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/** Drops `undefined` fields: a patch sets only what it names. */
function definedFields<Fields extends Record<string, unknown>>(fields: Fields): Partial<Fields> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<Fields>;
}

function toKeyRow(row: Selectable<KeysTable>): KeyRow {
  return {
    namespace: row.namespace,
    key: row.key,
    fencingToken: Number(row.fencing_token),
    leaseId: row.lease_id,
  };
}

function toLeaseRow(row: Selectable<LeasesTable>): LeaseRow {
  return {
    leaseId: row.lease_id,
    namespace: row.namespace,
    key: row.key,
    txnId: row.txn_id,
    owner: row.owner,
    fencingToken: Number(row.fencing_token),
    expiresAt: Number(row.expires_at),
    // The column only ever receives values of these unions (written by this module).
    state: row.state as LeaseState,
    createdAt: Number(row.created_at),
  };
}

function toTxnRow(row: Selectable<TxnsTable>): TxnRow {
  return {
    txnId: row.txn_id,
    state: row.state as TxnState,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toAttachmentRow(row: Selectable<AttachmentsTable>): AttachmentRow {
  return {
    versionId: row.version_id,
    attachmentId: row.attachment_id,
    namespace: row.namespace,
    key: row.key,
    name: row.name,
    state: row.state as AttachmentRowState,
    txnId: row.txn_id,
    size: Number(row.size),
    contentType: row.content_type,
    extension: row.extension,
    crc32: row.crc32,
    sha256: row.sha256,
    blobPath: row.blob_path,
    keyId: row.key_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toUploadRow(row: Selectable<UploadsTable>): UploadRow {
  return {
    uploadId: row.upload_id,
    state: row.state as UploadRow['state'],
    length: Number(row.length),
    offset: Number(row.offset),
    crc32: row.crc32,
    name: row.name,
    contentType: row.content_type,
    metadata: row.metadata,
    namespace: row.namespace,
    key: row.key,
    leaseId: row.lease_id,
    txnId: row.txn_id,
    fencingToken: row.fencing_token === null ? null : Number(row.fencing_token),
    attachmentId: row.attachment_id,
    expiresAt: Number(row.expires_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toUploadPartRow(row: Selectable<UploadPartsTable>): UploadPartRow {
  return { uploadId: row.upload_id, start: Number(row.start), size: Number(row.size), blobPath: row.blob_path, keyId: row.key_id };
}
