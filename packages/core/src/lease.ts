// Leases: acquire (optionally blocking), the lease check every mutation
// runs, keepalive and release. Lease, key and transaction state live in the
// metadata store only, so any number of server processes agree on them.
import { commitTxn, finishTxn, lockTxnKeys, rollbackTxn, type TxnOutcome } from './commit.js';
import type { Engine } from './engine.js';
import { AttacheError } from './errors.js';
import { checkTxnId, newId } from './ids.js';
import { checkKey, checkNamespace } from './names.js';
import type { LeaseRow, MetadataTx } from './ports.js';
import type { AcquireOptions, LeaseCredentials } from './types.js';

/** Longest pause between two attempts of a blocking acquire (other processes are not notified). */
const MAX_POLL_MS = 1_000;
const MAX_TTL_SECONDS = 7 * 24 * 3600;

export function checkTtl(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TTL_SECONDS) {
    throw new AttacheError('invalid_body', `ttl_seconds must be a number > 0 and ≤ ${MAX_TTL_SECONDS}`);
  }
  return ttlSeconds;
}

type AcquireAttempt =
  | { acquired: true; lease: LeaseRow; outcome?: TxnOutcome }
  | { acquired: false; retryAfterMs: number; outcome?: TxnOutcome };

export async function acquireLease(engine: Engine, options: AcquireOptions): Promise<LeaseRow> {
  const namespace = checkNamespace(options.namespace);
  const key = checkKey(options.key);
  const ttlMs = checkTtl(options.ttlSeconds) * 1000;
  if (typeof options.owner !== 'string' || options.owner.trim() === '') {
    throw new AttacheError('invalid_body', 'owner is required');
  }
  const blockSeconds = options.blockSeconds ?? -1;
  if (!Number.isInteger(blockSeconds) || blockSeconds < -1) {
    throw new AttacheError('invalid_body', 'block_seconds must be an integer ≥ -1');
  }
  const txnId = options.txnId === undefined ? undefined : checkTxnId(options.txnId);
  const deadline = blockSeconds > 0 ? engine.now() + blockSeconds * 1000 : blockSeconds === 0 ? Infinity : -Infinity;

  for (let attempt = 0; ; attempt++) {
    const result = await engine.metadata.transaction((tx) =>
      tryAcquire(tx, engine.now(), { namespace, key, ttlMs, owner: options.owner, txnId }),
    );
    if (result.outcome) await finishTxn(engine, result.outcome, false);
    if (result.acquired) return result.lease;
    const now = engine.now();
    if (now >= deadline || options.signal?.aborted) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new AttacheError('waiting', `key "${key}" is held by another lease`, {
        retryAfterSeconds: Math.max(1, Math.ceil(result.retryAfterMs / 1000)),
      });
    }
    // Wake on a local release, on the holder's expiry, or after a backoff
    // (for releases made by other processes), whichever comes first.
    const backoff = Math.min(MAX_POLL_MS, 25 * 2 ** Math.min(attempt, 6));
    await engine.waiters.wait(namespace, key, Math.min(backoff, result.retryAfterMs, deadline - now), options.signal);
  }
}

async function tryAcquire(
  tx: MetadataTx,
  now: number,
  request: { namespace: string; key: string; ttlMs: number; owner: string; txnId: string | undefined },
): Promise<AcquireAttempt> {
  const { namespace, key } = request;
  const keyRow = await tx.lockKey(namespace, key);
  let outcome: TxnOutcome | undefined;
  if (keyRow?.leaseId) {
    const holder = await tx.getLease(keyRow.leaseId);
    if (holder?.state === 'active') {
      if (holder.expiresAt > now) return { acquired: false, retryAfterMs: holder.expiresAt - now };
      // Lazy expiry: the holder's whole transaction rolls back.
      outcome = await rollbackTxn(tx, holder.txnId, now, 'expired');
    }
  }
  let txnId = request.txnId;
  if (txnId === undefined) {
    txnId = newId();
    await tx.insertTxn({ txnId, state: 'active', createdAt: now, updatedAt: now });
  } else {
    // Joining: lock the transaction's keys so a concurrent commit of it
    // either finishes first (and we see it ended) or waits for us.
    const partners = await lockTxnKeys(tx, txnId);
    const txn = await tx.getTxn(txnId);
    if (!txn) {
      await tx.insertTxn({ txnId, state: 'active', createdAt: now, updatedAt: now });
    } else if (txn.state !== 'active') {
      throw new AttacheError('txn_mismatch', `transaction ${txnId} has already ended (${txn.state})`);
    } else {
      const expired = partners.some((lease) => lease.expiresAt <= now);
      if (expired) throw new AttacheError('txn_mismatch', `transaction ${txnId} has an expired lease`);
    }
  }
  const fencingToken = (keyRow?.fencingToken ?? 0) + 1;
  const lease: LeaseRow = {
    leaseId: newId(),
    namespace,
    key,
    txnId,
    owner: request.owner,
    fencingToken,
    expiresAt: now + request.ttlMs,
    state: 'active',
    createdAt: now,
  };
  await tx.insertLease(lease);
  await tx.putKey({ namespace, key, fencingToken, leaseId: lease.leaseId });
  return outcome ? { acquired: true, lease, outcome } : { acquired: true, lease };
}

export type LeaseCheck =
  | { ok: true; lease: LeaseRow }
  | { ok: false; error: AttacheError; outcome?: TxnOutcome };

/**
 * The lease check of every lease-bound call, in the documented order:
 * lease_required → lease_expired → fencing_mismatch → txn_mismatch.
 * An expired lease found here is rolled back in the same transaction; the
 * caller commits that and then reports the error.
 */
export async function checkLease(tx: MetadataTx, credentials: LeaseCredentials, now: number): Promise<LeaseCheck> {
  const namespace = checkNamespace(credentials.namespace);
  const key = checkKey(credentials.key);
  // The key's lock first: the lease is then read as its last change left it.
  const keyRow = await tx.lockKey(namespace, key);
  const lease = await tx.getLease(credentials.leaseId);
  if (!lease || lease.namespace !== namespace || lease.key !== key) {
    return { ok: false, error: new AttacheError('lease_required', `no lease ${credentials.leaseId} on key "${key}"`) };
  }
  if (lease.state !== 'active' || lease.expiresAt <= now) {
    if (keyRow?.leaseId && keyRow.leaseId !== lease.leaseId) {
      const holder = await tx.getLease(keyRow.leaseId);
      if (holder?.state === 'active' && holder.expiresAt > now) {
        return { ok: false, error: new AttacheError('fencing_mismatch', 'a newer lease holds this key') };
      }
    }
    if (lease.state === 'released') {
      return { ok: false, error: new AttacheError('lease_required', 'the lease was released') };
    }
    const error = new AttacheError('lease_expired', 'the lease expired and its transaction was rolled back');
    if (lease.state === 'active') return { ok: false, error, outcome: await rollbackTxn(tx, lease.txnId, now, 'expired') };
    return { ok: false, error };
  }
  if (credentials.fencingToken !== undefined && credentials.fencingToken !== lease.fencingToken) {
    return { ok: false, error: new AttacheError('fencing_mismatch', `fencing token ${credentials.fencingToken} is not current`) };
  }
  if (credentials.txnId !== lease.txnId) {
    return { ok: false, error: new AttacheError('txn_mismatch', 'the lease belongs to another transaction') };
  }
  return { ok: true, lease };
}

/**
 * Runs `fn` in one metadata transaction after a successful lease check.
 * A failed check that rolled an expired lease back still commits that
 * rollback before the error is thrown.
 */
export async function withLease<T>(
  engine: Engine,
  credentials: LeaseCredentials,
  fn: (tx: MetadataTx, lease: LeaseRow, now: number) => Promise<T>,
): Promise<T> {
  const result = await engine.metadata.transaction(async (tx) => {
    const now = engine.now();
    const check = await checkLease(tx, credentials, now);
    if (!check.ok) return check;
    return { ok: true as const, value: await fn(tx, check.lease, now) };
  });
  if (!result.ok) {
    if (result.outcome) await finishTxn(engine, result.outcome, false);
    throw result.error;
  }
  return result.value;
}

export async function keepaliveLease(
  engine: Engine,
  credentials: LeaseCredentials,
  ttlSeconds: number,
): Promise<LeaseRow> {
  const ttlMs = checkTtl(ttlSeconds) * 1000;
  return withLease(engine, credentials, async (tx, lease, now) => {
    const expiresAt = now + ttlMs;
    await tx.updateLease(lease.leaseId, { expiresAt });
    return { ...lease, expiresAt };
  });
}

/**
 * Commits (or rolls back) the lease's whole transaction and releases every
 * lease of it. Idempotent: releasing a released lease answers the same.
 * Committing an expired lease is refused: a commit that did not happen is
 * never reported.
 */
export async function releaseLease(
  engine: Engine,
  credentials: LeaseCredentials,
  rollback: boolean,
): Promise<{ released: true }> {
  const result = await engine.metadata.transaction(async (tx) => {
    const now = engine.now();
    const namespace = checkNamespace(credentials.namespace);
    await tx.lockKey(namespace, checkKey(credentials.key));
    const lease = await tx.getLease(credentials.leaseId);
    if (lease && lease.namespace === namespace && lease.key === credentials.key) {
      if (lease.state === 'released') return { done: true as const };
      if (lease.state === 'expired' && rollback) return { done: true as const };
    }
    const check = await checkLease(tx, credentials, now);
    if (!check.ok) {
      if (check.error.code === 'lease_expired' && rollback) return { done: true as const, outcome: check.outcome };
      return { done: false as const, error: check.error, outcome: check.outcome };
    }
    if (rollback) return { done: true as const, outcome: await rollbackTxn(tx, check.lease.txnId, now, 'released') };
    const expiredPartner = (await lockTxnKeys(tx, check.lease.txnId)).find((other) => other.expiresAt <= now);
    if (expiredPartner) {
      return {
        done: false as const,
        error: new AttacheError('lease_expired', `lease on key "${expiredPartner.key}" of this transaction expired; rolled back`),
        outcome: await rollbackTxn(tx, check.lease.txnId, now, 'expired'),
      };
    }
    return { done: true as const, outcome: await commitTxn(tx, check.lease.txnId, now), committed: true };
  });
  if (result.outcome) await finishTxn(engine, result.outcome, 'committed' in result);
  if (!result.done) throw result.error;
  return { released: true };
}
