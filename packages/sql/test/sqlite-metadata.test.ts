import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetadataStore } from '@attache/core';
import { describeMetadataStore } from '@attache/testing';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteMetadata } from '../src/sqlite.js';

const directories: string[] = [];

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'attache-sql-'));
  directories.push(directory);
  return directory;
}

afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describeMetadataStore('sqlite file', () => sqliteMetadata({ filename: join(temporaryDirectory(), 'attache.db') }));

describe('sqliteMetadata', () => {
  let filename: string;
  const opened: MetadataStore[] = [];

  const open = async (): Promise<MetadataStore> => {
    const store = sqliteMetadata({ filename });
    opened.push(store);
    await store.migrate();
    return store;
  };

  beforeEach(() => {
    filename = join(temporaryDirectory(), 'nested', 'dir', 'attache.db');
  });

  it('answers unavailable (not a raw driver error) while another process holds the write lock too long', async () => {
    await (await open()).close();
    const store = sqliteMetadata({ filename, busyTimeoutMs: 50 });
    opened.push(store);
    const other = new Database(filename);
    try {
      other.exec('BEGIN IMMEDIATE');
      const error = await store.transaction((tx) => tx.getTxn('t')).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'AttacheError', code: 'unavailable', status: 503 });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await expect(store.transaction((tx) => tx.getTxn('t'))).resolves.toBeUndefined();
  });

  it('answers unavailable once closed', async () => {
    const store = await open();
    await store.close();
    await expect(store.transaction((tx) => tx.getTxn('t'))).rejects.toMatchObject({ code: 'unavailable' });
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('creates the directory of its file, in WAL mode with a busy timeout and foreign keys on', async () => {
    const store = await open();
    await store.close();
    const database = new Database(filename, { readonly: true });
    try {
      expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = database
        .prepare("select name from sqlite_master where type = 'table' and name like 'attache\\_%' escape '\\' order by name")
        .pluck()
        .all();
      expect(tables).toEqual([
        'attache_attachments',
        'attache_blob_data',
        'attache_garbage',
        'attache_keys',
        'attache_leases',
        'attache_migrations',
        'attache_migrations_lock',
        'attache_txns',
        'attache_upload_parts',
        'attache_uploads',
      ]);
    } finally {
      database.close();
    }
  });

  it('lets two stores on one file (as two processes) see each other’s committed writes', async () => {
    const first = await open();
    const second = await open();
    await first.transaction((tx) => tx.putKey({ namespace: 'ns', key: 'doc', fencingToken: 1, leaseId: 'lease-1' }));
    expect(await second.transaction((tx) => tx.lockKey('ns', 'doc'))).toEqual({
      namespace: 'ns',
      key: 'doc',
      fencingToken: 1,
      leaseId: 'lease-1',
    });
    await second.transaction(async (tx) => {
      const current = await tx.lockKey('ns', 'doc');
      await tx.putKey({ namespace: 'ns', key: 'doc', fencingToken: (current?.fencingToken ?? 0) + 1, leaseId: null });
    });
    expect((await first.transaction((tx) => tx.lockKey('ns', 'doc')))?.fencingToken).toBe(2);
  });

  it('keeps its rows across a close and reopen', async () => {
    const store = await open();
    await store.transaction((tx) => tx.enqueueGarbage(['p/a'], 1));
    await store.close();
    const reopened = await open();
    expect(await reopened.transaction((tx) => tx.listGarbage(10))).toEqual(['p/a']);
  });

  it('leaves a database it was given open on close', async () => {
    const database = new Database(join(temporaryDirectory(), 'given.db'));
    try {
      const store = sqliteMetadata({ database });
      await store.migrate();
      await store.transaction((tx) => tx.enqueueGarbage(['p/a'], 1));
      await store.close();
      expect(database.open).toBe(true);
      expect(database.prepare('select blob_path from attache_garbage').pluck().all()).toEqual(['p/a']);
    } finally {
      database.close();
    }
  });

  describe('group commit', () => {
    const txnRow = (txnId: string) => ({ txnId, state: 'active' as const, createdAt: 1, updatedAt: 1 });

    it('acknowledges transactions that queue together with one shared commit, not one commit each', async () => {
      const store = await open();
      // Every commit appends the pages it changed to the WAL (no checkpoint
      // runs below 1000 pages), so the WAL's growth counts commits.
      const walBytes = () => statSync(`${filename}-wal`).size;
      let before = walBytes();
      await store.transaction((tx) => tx.insertTxn(txnRow('alone')));
      const oneCommit = walBytes() - before;
      before = walBytes();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.transaction((tx) => tx.insertTxn(txnRow(`t${i}`)))));
      expect(walBytes() - before).toBeLessThanOrEqual(3 * oneCommit);
      const reader = await open();
      expect(await reader.transaction((tx) => tx.getTxn('t19'))).toMatchObject({ txnId: 't19' });
    });

    it('rolls back a failing transaction alone; the others of its commit keep their writes', async () => {
      const store = await open();
      const failure = new Error('the caller changed its mind');
      const results = await Promise.allSettled(
        ['a', 'b', 'c'].map((txnId) =>
          store.transaction(async (tx) => {
            await tx.insertTxn(txnRow(txnId));
            if (txnId === 'b') throw failure;
            return txnId;
          }),
        ),
      );
      expect(results).toEqual([
        { status: 'fulfilled', value: 'a' },
        { status: 'rejected', reason: failure },
        { status: 'fulfilled', value: 'c' },
      ]);
      const reader = await open();
      const found = await reader.transaction(async (tx) => [await tx.getTxn('a'), await tx.getTxn('b'), await tx.getTxn('c')]);
      expect(found.map((row) => row?.txnId)).toEqual(['a', undefined, 'c']);
    });

    it('lets each transaction of a commit see the writes of those before it', async () => {
      const store = await open();
      const [, seen] = await Promise.all([
        store.transaction((tx) => tx.insertTxn(txnRow('first'))),
        store.transaction((tx) => tx.getTxn('first')),
      ]);
      expect(seen?.txnId).toBe('first');
    });

    it('fails every waiting transaction with unavailable when another process holds the write lock past busy_timeout', async () => {
      const store = await open();
      const other = new Database(filename);
      try {
        const blocked = sqliteMetadata({ filename, busyTimeoutMs: 50 });
        opened.push(blocked);
        other.exec('BEGIN IMMEDIATE');
        const results = await Promise.allSettled(
          ['x', 'y'].map((txnId) => blocked.transaction((tx) => tx.insertTxn(txnRow(txnId)))),
        );
        expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
        expect(results.map((result) => (result as PromiseRejectedResult).reason)).toMatchObject([
          { code: 'unavailable' },
          { code: 'unavailable' },
        ]);
        other.exec('ROLLBACK');
        expect(await store.transaction(async (tx) => [await tx.getTxn('x'), await tx.getTxn('y')])).toEqual([undefined, undefined]);
        // And the store works again once the lock is free.
        await blocked.transaction((tx) => tx.insertTxn(txnRow('z')));
        expect((await store.transaction((tx) => tx.getTxn('z')))?.txnId).toBe('z');
      } finally {
        if (other.inTransaction) other.exec('ROLLBACK');
        other.close();
      }
    });
  });
});
