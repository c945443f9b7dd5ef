// PostgreSQL: the port specification, plus what only a server shared by
// several processes can get wrong. Each test gets a new database on the run's
// server (see @attache/testing's postgres.ts); separate `postgresMetadata`
// instances have separate pools, so they stand for separate processes.
import { createServer } from 'node:net';
import { isAttacheError, type MetadataStore } from '@attache/core';
import {
  createTestDatabase,
  describeMetadataStore,
  describePostgres,
  DROP_DATABASES_TIMEOUT_MS,
  dropTestDatabases,
  type TestDatabase,
} from '@attache/testing';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postgresDialectInfo } from '../src/index.js';
import { postgresMetadata } from '../src/postgres.js';

describePostgres('PostgreSQL', (serverUrl) => {
  const databases: TestDatabase[] = [];
  const newDatabase = async (): Promise<TestDatabase> => {
    const database = await createTestDatabase(serverUrl);
    databases.push(database);
    return database;
  };
  afterAll(() => dropTestDatabases(databases), DROP_DATABASES_TIMEOUT_MS);

  describeMetadataStore('postgres', async () => postgresMetadata({ connectionString: (await newDatabase()).url }));

  describe('postgresMetadata', () => {
    let url: string;
    const opened: MetadataStore[] = [];
    const clients: pg.Client[] = [];

    /** A store with its own pool: one process' view of the database. */
    const open = async (max?: number): Promise<MetadataStore> => {
      const store = postgresMetadata(max === undefined ? { connectionString: url } : { connectionString: url, max });
      opened.push(store);
      await store.migrate();
      return store;
    };
    /** A plain connection for looking behind the store's back. */
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: url });
      clients.push(client);
      await client.connect();
      return client;
    };

    beforeEach(async () => {
      url = (await newDatabase()).url;
    });
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
      for (const client of clients.splice(0)) await client.end();
    });

    describe('release notifications', () => {
      it('tells another process when a committed transaction released a key, and nothing for a rolled-back one', async () => {
        const [releaser, waiter] = [await open(), await open()];
        const heard: string[] = [];
        const stop = waiter.onRelease!((namespace, key) => heard.push(`${namespace}/${key}`));
        // LISTEN is taken asynchronously: announce until the first one arrives (bounded).
        const deadline = Date.now() + 5_000;
        while (!heard.includes('ns/warm-up')) {
          if (Date.now() > deadline) throw new Error('no notification within 5 s');
          await releaser.transaction((tx) => tx.announceRelease!('ns', 'warm-up'));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await expect(
          releaser.transaction(async (tx) => {
            await tx.announceRelease!('ns', 'rolled-back');
            throw new Error('abort');
          }),
        ).rejects.toThrow('abort');
        await releaser.transaction((tx) => tx.announceRelease!('ns', 'doc'));
        const until = Date.now() + 2_000;
        while (!heard.includes('ns/doc') && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(heard).toContain('ns/doc');
        expect(heard).not.toContain('ns/rolled-back');
        stop();
      });
    });

    describe('lockTxn', () => {
      it('makes a second process wait for the same transaction id, not for another one', async () => {
        const [first, second] = [await open(), await open()];
        let releaseFirst!: () => void;
        const gate = new Promise<void>((resolve) => {
          releaseFirst = resolve;
        });
        let firstLocked!: () => void;
        const locked = new Promise<void>((resolve) => {
          firstLocked = resolve;
        });
        const holding = first.transaction(async (tx) => {
          await tx.lockTxn('txn-1');
          firstLocked();
          await gate;
        });
        await locked;
        let sameTxn = 'waiting';
        const waiting = second.transaction(async (tx) => {
          await tx.lockTxn('txn-1');
          sameTxn = 'locked';
        });
        await second.transaction((tx) => tx.lockTxn('txn-2'));
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(sameTxn).toBe('waiting');
        releaseFirst();
        await Promise.all([holding, waiting]);
        expect(sameTxn).toBe('locked');
      });
    });

    describe('lockKey', () => {
      it('serializes 50 first acquires of a new key from two processes: the fencing token ends at exactly 50', async () => {
        const [first, second] = [await open(), await open()];
        const holders = new Set<string>();
        let inside = 0;
        let overlapped = false;
        const started = performance.now();
        const acquires = Array.from({ length: 50 }, (_, index) =>
          (index % 2 === 0 ? first : second).transaction(async (tx) => {
            const current = await tx.lockKey('ns', 'brand-new');
            inside += 1;
            if (inside > 1) overlapped = true;
            // Give the other transactions every chance to interleave here.
            await pause();
            await tx.putKey({ namespace: 'ns', key: 'brand-new', fencingToken: (current?.fencingToken ?? 0) + 1, leaseId: null });
            holders.add(index % 2 === 0 ? 'first' : 'second');
            inside -= 1;
          }),
        );
        await Promise.all(acquires);
        const elapsedMs = performance.now() - started;
        console.info(`postgres: 50 contended lockKey → putKey transactions from 2 pools took ${elapsedMs.toFixed(0)} ms`);

        expect((await first.transaction((tx) => tx.lockKey('ns', 'brand-new')))?.fencingToken).toBe(50);
        expect(overlapped, 'two transactions were inside the lock at once').toBe(false);
        expect([...holders].sort()).toEqual(['first', 'second']);
      });

      it('makes a second transaction wait for the key even though no row exists yet', async () => {
        const [first, second] = [await open(), await open()];
        let releaseFirst!: () => void;
        const gate = new Promise<void>((resolve) => {
          releaseFirst = resolve;
        });
        let firstLocked!: () => void;
        const locked = new Promise<void>((resolve) => {
          firstLocked = resolve;
        });
        const holding = first.transaction(async (tx) => {
          expect(await tx.lockKey('ns', 'missing')).toBeUndefined();
          firstLocked();
          await gate;
          await tx.putKey({ namespace: 'ns', key: 'missing', fencingToken: 1, leaseId: 'lease-1' });
        });
        await locked;
        let secondRead: unknown = 'not yet';
        const waiting = second.transaction(async (tx) => {
          secondRead = await tx.lockKey('ns', 'missing');
        });
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(secondRead).toBe('not yet');
        releaseFirst();
        await Promise.all([holding, waiting]);
        expect(secondRead).toEqual({ namespace: 'ns', key: 'missing', fencingToken: 1, leaseId: 'lease-1' });
      });

      it('does not make other keys wait', async () => {
        const [first, second] = [await open(), await open()];
        let releaseFirst!: () => void;
        const gate = new Promise<void>((resolve) => {
          releaseFirst = resolve;
        });
        const holding = first.transaction(async (tx) => {
          await tx.lockKey('ns', 'a');
          await gate;
        });
        await expect(second.transaction((tx) => tx.lockKey('ns', 'b'))).resolves.toBeUndefined();
        releaseFirst();
        await holding;
      });
    });

    describe('leases', () => {
      it('a transaction that locks the key first reads the lease as a concurrent change left it', async () => {
        const [releaser, checker] = [await open(), await open()];
        const lease = {
          leaseId: 'lease-1', namespace: 'ns', key: 'doc', txnId: 'txn-1', owner: 'o',
          fencingToken: 1, expiresAt: 2 ** 42, state: 'active' as const, createdAt: 1,
        };
        await releaser.transaction(async (tx) => {
          await tx.lockKey('ns', 'doc');
          await tx.insertLease(lease);
        });
        let releaseCommit!: () => void;
        const gate = new Promise<void>((resolve) => {
          releaseCommit = resolve;
        });
        let updated!: () => void;
        const isUpdated = new Promise<void>((resolve) => {
          updated = resolve;
        });
        // A release in flight: the lease is marked released, not yet committed.
        const releasing = releaser.transaction(async (tx) => {
          await tx.lockKey('ns', 'doc');
          await tx.updateLease('lease-1', { state: 'released' });
          updated();
          await gate;
        });
        await isUpdated;
        // An attach checking that lease meanwhile (the engine locks the key
        // before it reads the lease) must not act on "active".
        const checking = checker.transaction(async (tx) => {
          await tx.lockKey('ns', 'doc');
          return tx.getLease('lease-1');
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        releaseCommit();
        await releasing;
        expect((await checking)?.state).toBe('released');
      });
    });

    describe('migrate', () => {
      it('is harmless when several processes run it at once on an empty database, and when run again', async () => {
        const stores = Array.from({ length: 4 }, () => postgresMetadata({ connectionString: url }));
        opened.push(...stores);
        await Promise.all(stores.map((store) => store.migrate()));
        await Promise.all(stores.map((store) => store.migrate()));
        const client = await connect();
        const applied = await client.query<{ name: string }>('select name from attache_migrations order by name');
        expect(applied.rows.map((row) => row.name)).toEqual(['0001_initial', '0002_uploads', '0003_blob_data']);
        await stores[0]!.transaction((tx) => tx.putKey({ namespace: 'ns', key: 'k', fencingToken: 1, leaseId: null }));
        expect((await stores[3]!.transaction((tx) => tx.lockKey('ns', 'k')))?.fencingToken).toBe(1);
      });

      it('stores epoch milliseconds and fencing tokens in bigint columns', async () => {
        await open();
        const client = await connect();
        const columns = await client.query<{ column: string; data_type: string }>(
          `select table_name || '.' || column_name as column, data_type from information_schema.columns
           where table_name like 'attache\\_%' and (column_name like '%\\_at' or column_name in ('fencing_token', 'size'))
           order by 1`,
        );
        expect(columns.rows.length).toBeGreaterThanOrEqual(10);
        expect(new Set(columns.rows.map((row) => row.data_type))).toEqual(new Set(['bigint']));
      });
    });

    describe('unavailable', () => {
      it('answers unavailable (503, not a raw driver error) when the server cannot be reached', async () => {
        const port = await closedPort();
        const store = postgresMetadata({ connectionString: `postgres://postgres@127.0.0.1:${port}/none` });
        opened.push(store);
        const error = await store.transaction((tx) => tx.getTxn('t')).catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'AttacheError', code: 'unavailable', status: 503 });
      });

      it('answers unavailable when the server ends the session of a waiting transaction (57P01)', async () => {
        const [holder, waiter] = [await open(), await open()];
        const admin = await connect();
        let releaseHolder!: () => void;
        const gate = new Promise<void>((resolve) => {
          releaseHolder = resolve;
        });
        const holding = holder.transaction(async (tx) => {
          await tx.lockKey('ns', 'doc');
          await gate;
        });
        await pause();
        const waiting = waiter.transaction((tx) => tx.lockKey('ns', 'doc')).catch((e: unknown) => e);
        const database = new URL(url).pathname.slice(1);
        const pid = await poll(async () => {
          const found = await admin.query<{ pid: number }>(
            "select pid from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and wait_event = 'advisory'",
            [database],
          );
          return found.rows[0]?.pid;
        });
        await admin.query('select pg_terminate_backend($1)', [pid]);
        expect(await waiting).toMatchObject({ name: 'AttacheError', code: 'unavailable' });
        releaseHolder();
        await holding;
        // The pool replaced the dead connection.
        await expect(waiter.transaction((tx) => tx.lockKey('ns', 'doc'))).resolves.toBeUndefined();
      });

      it('answers unavailable to one side of a deadlock (40P01) and lets the other commit', async () => {
        const [first, second] = [await open(), await open()];
        let bothLocked!: () => void;
        let count = 0;
        const ready = new Promise<void>((resolve) => {
          bothLocked = resolve;
        });
        const crossing = (store: MetadataStore, mine: string, theirs: string) =>
          store.transaction(async (tx) => {
            await tx.lockKey('ns', mine);
            if (++count === 2) bothLocked();
            await ready;
            await tx.lockKey('ns', theirs);
            await tx.putKey({ namespace: 'ns', key: mine, fencingToken: 1, leaseId: null });
          });
        const outcomes = await Promise.allSettled([crossing(first, 'a', 'b'), crossing(second, 'b', 'a')]);
        const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
        expect(failures).toHaveLength(1);
        expect(isAttacheError(failures[0]) && failures[0].code).toBe('unavailable');
      });

      it('classifies driver errors: connection loss and server states are unavailable, bad statements are not', () => {
        const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
        for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', '08006', '08001', '53300', '57P01', '57P03', '40P01', '40001']) {
          expect(postgresDialectInfo.isUnavailable(withCode(code)), code).toBe(true);
        }
        expect(postgresDialectInfo.isUnavailable(new AggregateError([withCode('ECONNREFUSED')]))).toBe(true);
        expect(postgresDialectInfo.isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
        for (const code of ['23505', '42P01', '22P02', 'ENOENT']) {
          expect(postgresDialectInfo.isUnavailable(withCode(code)), code).toBe(false);
        }
        expect(postgresDialectInfo.isUnavailable(new Error('boom'))).toBe(false);
        expect(postgresDialectInfo.isUnavailable('ECONNREFUSED')).toBe(false);
      });

      it('answers unavailable once closed', async () => {
        const store = await open();
        await store.close();
        await expect(store.transaction((tx) => tx.getTxn('t'))).rejects.toMatchObject({ code: 'unavailable' });
      });
    });

    describe('pools', () => {
      it('uses a pool it was given and leaves it open on close', async () => {
        const pool = new pg.Pool({ connectionString: url, max: 2 });
        try {
          const store = postgresMetadata({ pool });
          await store.migrate();
          await store.transaction((tx) => tx.enqueueGarbage(['p/a'], 1));
          await store.close();
          const result = await pool.query<{ blob_path: string }>('select blob_path from attache_garbage');
          expect(result.rows.map((row) => row.blob_path)).toEqual(['p/a']);
        } finally {
          await pool.end();
        }
      });

      it('runs many more concurrent transactions than it has connections (they queue)', async () => {
        const store = await open(2);
        const increments = Array.from({ length: 20 }, (_, index) =>
          store.transaction(async (tx) => {
            const current = await tx.lockKey('ns', `key-${index % 3}`);
            await tx.putKey({ namespace: 'ns', key: `key-${index % 3}`, fencingToken: (current?.fencingToken ?? 0) + 1, leaseId: null });
          }),
        );
        await Promise.all(increments);
        const tokens = await store.transaction(async (tx) =>
          Promise.all([0, 1, 2].map(async (key) => (await tx.lockKey('ns', `key-${key}`))?.fencingToken)),
        );
        expect(tokens).toEqual([7, 7, 6]);
      });
    });
  });
});

/** Yields to the event loop (a macrotask), so concurrent work really interleaves. */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 5));
}

async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A port nothing listens on (it was free a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
