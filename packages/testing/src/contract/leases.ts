// Leases over HTTP: acquire (waiting, blocking), keepalive, release, fencing
// and expiry (the store's clock is moved, nothing sleeps).
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { expectError, freshKey, type LeaseJson } from './harness.js';
import type { ContractContext } from './context.js';

export function leaseScenarios(context: ContractContext): void {
  describe('leases', () => {
    it('acquires a key and answers with lease, transaction, owner, expiry and fencing token', async () => {
      const { http } = context;
      const key = freshKey('lease');
      const before = Math.floor(Date.now() / 1000);
      const response = await http.postJson('/acquire', { key, namespace: 'team-a', owner: 'worker-1', ttl_seconds: 30 });
      expect(response.status).toBe(200);
      const lease = (await response.json()) as LeaseJson;
      expect(lease).toMatchObject({ key, namespace: 'team-a', owner: 'worker-1', fencing_token: 1 });
      expect(lease.lease_id).toEqual(expect.any(String));
      expect(lease.txn_id).toEqual(expect.any(String));
      expect(lease.expires_at_unix).toBeGreaterThanOrEqual(before + 29);
      await http.release(lease);
    });

    it('accepts an owner of 256 characters and refuses 257 with 400 invalid_body', async () => {
      const { http } = context;
      const ok = await http.postJson('/acquire', { key: freshKey('owner'), owner: 'o'.repeat(256), ttl_seconds: 30 });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as LeaseJson).owner).toBe('o'.repeat(256));
      const tooLong = await http.postJson('/acquire', { key: freshKey('owner'), owner: 'o'.repeat(257), ttl_seconds: 30 });
      const body = await expectError(tooLong, 'invalid_body');
      expect(body.detail).toMatch(/owner/);
    });

    it('refuses a blank owner and a path-unsafe txn_id with 400 invalid_body, naming the body field', async () => {
      const { http } = context;
      const blank = await expectError(await http.postJson('/acquire', { key: freshKey('owner'), owner: '   ', ttl_seconds: 30 }), 'invalid_body');
      expect(blank.detail).toMatch(/^owner /);
      const unsafe = await http.postJson('/acquire', { key: freshKey('txn'), owner: 'o', ttl_seconds: 30, txn_id: '../x' });
      expect((await expectError(unsafe, 'invalid_body')).detail).toMatch(/^txn_id /);
      const ttl = await expectError(await http.postJson('/acquire', { key: freshKey('ttl'), owner: 'o', ttl_seconds: 0 }), 'invalid_body');
      expect(ttl.detail).toMatch(/^ttl_seconds /);
    });

    it('takes ttl_seconds from 1 ms to 7 days (604800 s) and refuses anything else with 400 invalid_body', async () => {
      const { http } = context;
      for (const ttl of [1e-300, 0.0009, 604_800.001, 1e9, -1]) {
        const key = freshKey('ttl');
        await expectError(await http.postJson('/acquire', { key, owner: 'o', ttl_seconds: ttl }), 'invalid_body');
        // Nothing was acquired: the key is free.
        expect((await http.postJson('/acquire', { key, owner: 'o', ttl_seconds: 5 })).status, String(ttl)).toBe(200);
      }
      for (const ttl of [0.001, 604_800]) expect((await http.postJson('/acquire', { key: freshKey('ttl'), owner: 'o', ttl_seconds: ttl })).status).toBe(200);
      const lease = await http.acquire(freshKey('ttl'));
      await expectError(await http.keepalive(lease, 1e-300), 'invalid_body');
      await expectError(await http.keepalive(lease, 604_801), 'invalid_body');
      expect((await http.keepalive(lease, 604_800)).status).toBe(200);
    });

    it('keeps a lease alive and reports the new expiry', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey(), { ttl_seconds: 5 });
      const response = await http.keepalive(lease, 600);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { expires_at_unix: number; fencing_token: number };
      expect(body.fencing_token).toBe(lease.fencing_token);
      expect(body.expires_at_unix).toBeGreaterThan(lease.expires_at_unix + 500);
    });

    it('answers release twice with released: true (idempotent)', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      expect(await (await http.release(lease)).json()).toEqual({ released: true });
      const again = await http.release(lease);
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual({ released: true });
    });

    it('refuses to commit mk/b after its shared transaction was rolled back through mk/a: 409 txn_rolled_back, nothing kept', async () => {
      const { http } = context;
      const a = await http.acquire(freshKey('mk/a'));
      const b = await http.acquire(freshKey('mk/b'), { txn_id: a.txn_id });
      expect((await http.uploadRaw(a, 'x', 'x')).status).toBe(200);
      expect((await http.uploadRaw(b, 'y', 'y')).status).toBe(200);
      const rolledBack = await http.release(a, true);
      expect(rolledBack.status).toBe(200);
      expect(await rolledBack.json()).toEqual({ released: true });
      const body = await expectError(await http.release(b), 'txn_rolled_back');
      expect(body.detail).toMatch(/nothing was committed/);
      expect(await http.committed(b.key)).toEqual([]);
      expect(await http.committed(a.key)).toEqual([]);
      // The rollback itself replays fine.
      expect((await http.release(b, true)).status).toBe(200);
    });

    it('refuses a commit release of a lease it rolled back itself with 409 txn_rolled_back', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      expect((await http.uploadRaw(lease, 'y', 'y')).status).toBe(200);
      expect((await http.release(lease, true)).status).toBe(200);
      await expectError(await http.release(lease), 'txn_rolled_back');
      expect(await http.committed(lease.key)).toEqual([]);
    });

    it('refuses a rollback release of a committed transaction with 409 txn_committed, keeping the commit', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      expect((await http.uploadRaw(lease, 'y', 'y')).status).toBe(200);
      expect((await http.release(lease)).status).toBe(200);
      await expectError(await http.release(lease, true), 'txn_committed');
      expect((await http.committed(lease.key)).map((a) => a.name)).toEqual(['y']);
    });

    it('checks the credentials of a replayed release: wrong X-Fencing-Token → 403 fencing_mismatch, bogus txn_id → 409 txn_mismatch', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      expect((await http.release(lease)).status).toBe(200);
      await expectError(await http.release({ ...lease, fencing_token: lease.fencing_token + 7 }), 'fencing_mismatch');
      await expectError(await http.release({ ...lease, txn_id: 'bogus-txn' }), 'txn_mismatch');
      await expectError(await http.release({ ...lease, txn_id: 'bogus-txn' }, true), 'txn_mismatch');
      expect((await http.release(lease)).status).toBe(200);
    });

    it('answers 409 waiting with Retry-After (the holder’s remaining seconds) when the key is held', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey(), { ttl_seconds: 40 });
      const waiting = await http.postJson('/acquire', { key: lease.key, owner: 'other', ttl_seconds: 5 });
      const body = await expectError(waiting, 'waiting');
      const retryAfter = Number(waiting.headers.get('Retry-After'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(40);
      expect(body.retry_after_seconds).toBe(retryAfter);
    });

    it('blocks an acquire with block_seconds until the holder releases, then hands over the key', async () => {
      const { http } = context;
      const holder = await http.acquire(freshKey());
      const started = Date.now();
      const blocked = http.postJson('/acquire', { key: holder.key, owner: 'next', ttl_seconds: 30, block_seconds: 10 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      await http.release(holder);
      const response = await blocked;
      expect(response.status).toBe(200);
      const next = (await response.json()) as LeaseJson;
      expect(next).toMatchObject({ owner: 'next', fencing_token: holder.fencing_token + 1 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('gives up a blocking acquire with 409 waiting once block_seconds have passed', async () => {
      const { http } = context;
      const holder = await http.acquire(freshKey());
      const started = Date.now();
      const response = await http.postJson('/acquire', { key: holder.key, owner: 'next', ttl_seconds: 30, block_seconds: 1 });
      await expectError(response, 'waiting');
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });

    it.skipIf(!context.supports.hangUpReachesHandler)('stops waiting when the client of a blocking acquire hangs up, so it never takes the key', async () => {
      const { http } = context;
      const holder = await http.acquire(freshKey());
      const body = JSON.stringify({ key: holder.key, owner: 'gone', ttl_seconds: 30, block_seconds: 0 });
      const abandoned = httpRequest(http.url('/acquire'), { method: 'POST', headers: { 'Content-Type': 'application/json' } });
      abandoned.on('error', () => {}); // the reset caused by destroy() below
      abandoned.end(body);
      await new Promise((resolve) => setTimeout(resolve, 200));
      abandoned.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await http.release(holder);
      // Had the abandoned acquire kept waiting, it would hold the key now.
      const next = await http.postJson('/acquire', { key: holder.key, owner: 'present', ttl_seconds: 30 });
      expect(next.status).toBe(200);
      expect(await next.json()).toMatchObject({ owner: 'present' });
    });

    it.skipIf(!context.supports.clock)('increments the fencing token on every acquire and rejects the older lease with fencing_mismatch', async () => {
      const { http, server } = context;
      const old = await http.acquire(freshKey(), { ttl_seconds: 1 });
      server.advance(2);
      const current = await http.acquire(old.key);
      expect(current.fencing_token).toBe(old.fencing_token + 1);
      await expectError(await http.uploadRaw(old, 'stale.txt', 'x'), 'fencing_mismatch');
      await expectError(await http.uploadRaw({ ...current, fencing_token: old.fencing_token }, 'stale.txt', 'x'), 'fencing_mismatch');
      expect((await http.uploadRaw(current, 'fresh.txt', 'x')).status).toBe(200);
    });

    it('answers lease_required for a released lease used again', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await http.release(lease);
      await expectError(await http.uploadRaw(lease, 'late.txt', 'x'), 'lease_required');
    });

    it('answers txn_mismatch for the right lease with another transaction id', async () => {
      const { http } = context;
      const lease = await http.acquire(freshKey());
      await expectError(await http.uploadRaw({ ...lease, txn_id: 'another-txn' }, 'x', 'x'), 'txn_mismatch');
    });

    it.skipIf(!context.supports.clock)('expires a lease by the clock: lease_expired on use and on commit, 200 on rollback, staged uploads gone', async () => {
      const { http, server } = context;
      const lease = await http.acquire(freshKey(), { ttl_seconds: 1 });
      expect((await http.uploadRaw(lease, 'early.txt', 'x')).status).toBe(200);
      server.advance(5);
      await expectError(await http.uploadRaw(lease, 'late.txt', 'x'), 'lease_expired');
      await expectError(await http.keepalive(lease, 30), 'lease_expired');
      await expectError(await http.release(lease), 'lease_expired');
      expect((await http.release(lease, true)).status).toBe(200);
      const next = await http.acquire(lease.key);
      expect(await http.namesUnderLease(next)).toEqual([]);
      expect(await server.blobs.ofLease(lease)).toEqual([]);
    });

    it('commits every key of a shared transaction (txn_id) when one of its leases is released', async () => {
      const { http } = context;
      const first = await http.acquire(freshKey('txn'));
      const second = await http.acquire(freshKey('txn'), { txn_id: first.txn_id });
      expect(second.txn_id).toBe(first.txn_id);
      await http.uploadRaw(first, 'one.txt', '1');
      await http.uploadRaw(second, 'two.txt', '2');
      await http.release(first);
      expect((await http.committed(first.key)).map((a) => a.name)).toEqual(['one.txt']);
      expect((await http.committed(second.key)).map((a) => a.name)).toEqual(['two.txt']);
      // Its lease was released with the transaction: the key is free.
      const afterwards = await http.postJson('/acquire', { key: second.key, owner: 'o', ttl_seconds: 5 });
      expect(afterwards.status).toBe(200);
    });
  });
}
