// The fsync that SQLite commits wait for, shared and off the event loop
// (shared-sync.ts), and what group commit does with it: nobody hears of a
// commit before an fsync after it has finished.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedSync, type SharedSyncTarget } from '@attache/core';
import Database from 'better-sqlite3';
import { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqlMetadata } from '../src/metadata.js';
import type { AttacheDatabase } from '../src/schema.js';
import { ImmediateSqliteDialect, sqliteDialectInfo } from '../src/sqlite-dialect.js';
import { sqliteMetadata } from '../src/sqlite.js';

/** An fsync target whose fsyncs finish when the test says so. */
function heldTarget() {
  const pending: Array<{ finish(): void; fail(error: Error): void }> = [];
  let started = 0;
  const target: SharedSyncTarget = {
    fsync: () =>
      new Promise<void>((resolve, reject) => {
        started += 1;
        pending.push({ finish: resolve, fail: reject });
      }),
    close: async () => {},
  };
  return {
    target,
    started: () => started,
    finishNext: async () => {
      pending.shift()!.finish();
      await new Promise((resolve) => setImmediate(resolve));
    },
    failNext: async (error: Error) => {
      pending.shift()!.fail(error);
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function watch(promise: Promise<unknown>) {
  const state = { settled: false, error: undefined as unknown };
  promise.then(
    () => {
      state.settled = true;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

describe('sharedSync', () => {
  it('resolves a caller only after an fsync that began after its call', async () => {
    const held = heldTarget();
    const shared = sharedSync(held.target);
    const first = watch(shared.sync());
    expect(held.started()).toBe(1);
    // Arrives while the first fsync runs: that one may predate its writes.
    const second = watch(shared.sync());
    await held.finishNext();
    expect(first.settled).toBe(true);
    expect(second.settled).toBe(false);
    expect(held.started()).toBe(2);
    await held.finishNext();
    expect(second.settled).toBe(true);
  });

  it('lets every caller that arrives during one fsync share the next', async () => {
    const held = heldTarget();
    const shared = sharedSync(held.target);
    void shared.sync();
    const waiting = [shared.sync(), shared.sync(), shared.sync()].map(watch);
    await held.finishNext();
    await held.finishNext();
    expect(held.started()).toBe(2);
    expect(waiting.every((state) => state.settled && state.error === undefined)).toBe(true);
  });

  it('fails every caller after an fsync failed, even when a later fsync would succeed', async () => {
    const held = heldTarget();
    const shared = sharedSync(held.target);
    const first = watch(shared.sync());
    const second = watch(shared.sync());
    const failure = new Error('EIO: i/o error, fsync');
    await held.failNext(failure);
    expect(first.error).toBe(failure);
    expect(second.error).toBe(failure);
    await expect(shared.sync()).rejects.toBe(failure);
    expect(held.started()).toBe(1);
  });
});

describe('group commit with an fsync after the commit (SQLite, synchronous = NORMAL)', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  async function storeWithHeldFsync() {
    const directory = mkdtempSync(join(tmpdir(), 'attache-sync-'));
    directories.push(directory);
    const database = new Database(join(directory, 'attache.db'));
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    const held = heldTarget();
    const inTransaction = () => database.inTransaction;
    const kysely = new Kysely<AttacheDatabase>({ dialect: new ImmediateSqliteDialect({ database }, inTransaction) });
    const store = createSqlMetadata(kysely, sqliteDialectInfo, { groupCommit: { inTransaction, durability: sharedSync(held.target) } });
    const migrated = store.migrate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await held.finishNext();
    await migrated;
    return { store, held, database };
  }

  it('answers a committed transaction only once the fsync after its commit finished', async () => {
    const { store, held, database } = await storeWithHeldFsync();
    const insert = watch(store.transaction((tx) => tx.insertTxn(txnRow('t1'))));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Committed (another connection sees it) but not answered: not durable yet.
    expect(database.prepare("select count(*) from attache_txns where txn_id = 't1'").pluck().get()).toBe(1);
    expect(insert.settled).toBe(false);
    // A read that sees it is not answered before that fsync either.
    const read = watch(store.transaction((tx) => tx.getTxn('t1')));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(read.settled).toBe(false);
    await held.finishNext();
    expect(insert.settled).toBe(true);
    await held.finishNext();
    expect(read.settled).toBe(true);
    await store.close();
    database.close();
  });

  it('answers a transaction run with durable: false at its commit, and a durable one after it only once an fsync covers both', async () => {
    const { store, held, database } = await storeWithHeldFsync();
    const startedBefore = held.started();
    // An inline blob whose row follows (PutOptions.metadataWriteFollows): committed, answered, no fsync of its own.
    await store.transaction((tx) => tx.insertTxn(txnRow('vouched')), { durable: false });
    expect(held.started()).toBe(startedBefore);
    expect(database.prepare("select count(*) from attache_txns where txn_id = 'vouched'").pluck().get()).toBe(1);
    // The row that vouches for it waits for an fsync begun after both commits.
    const row = watch(store.transaction((tx) => tx.insertTxn(txnRow('row'))));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(row.settled).toBe(false);
    expect(held.started()).toBe(startedBefore + 1);
    await held.finishNext();
    expect(row.settled).toBe(true);
    expect(row.error).toBeUndefined();
    await store.close();
    database.close();
  });

  it('fails the batch whose fsync failed, and every transaction after it, with unavailable', async () => {
    const { store, held, database } = await storeWithHeldFsync();
    const insert = store.transaction((tx) => tx.insertTxn(txnRow('t1')));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await held.failNext(new Error('EIO: i/o error, fsync'));
    await expect(insert).rejects.toMatchObject({ code: 'unavailable' });
    await expect(store.transaction((tx) => tx.getTxn('t1'))).rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('fsync') });
    await store.close();
    database.close();
  });
});

describe('sqliteMetadata durability settings', () => {
  it('commits with synchronous = NORMAL on a file (the WAL is fsynced off the event loop) and FULL in memory', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'attache-sync-'));
    try {
      const onFile = new Database(join(directory, 'given.db'));
      const inMemory = new Database(':memory:');
      const stores = [sqliteMetadata({ database: onFile }), sqliteMetadata({ database: inMemory })];
      for (const store of stores) {
        await store.migrate();
        await store.transaction((tx) => tx.insertTxn(txnRow('t')));
      }
      expect(onFile.pragma('synchronous', { simple: true })).toBe(1);
      expect(inMemory.pragma('synchronous', { simple: true })).toBe(2);
      for (const store of stores) await store.close();
      onFile.close();
      inMemory.close();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

function txnRow(txnId: string) {
  return { txnId, state: 'active' as const, createdAt: 1, updatedAt: 1 };
}
