// Leases: acquire (optionally blocking), the lease check every mutation
// runs, keepalive and release. Lease, key and transaction state live in the
// metadata store only, so any number of server processes agree on them.
import { commitTxn, expireTxn, finishTxn, lockTxnKeys, rollbackTxn, type TxnOutcome } from './commit.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { looksLikeId, newId } from './ids.js';
import type { CheckedAcquire, CheckedCredentials } from './lease-rules.js';
import type { KeyRow, LeaseRow, MetadataTx } from './ports.js';

/** Longest pause between two attempts of a blocking acquire (other processes are not notified). */
const MAX_POLL_MS = 1_000;

type AcquireAttempt =
  | { acquired: true; lease: LeaseRow }
  | { acquired: false; retryAfterMs: number }
  /** The key's holder expired: its transaction must be rolled back first. */
  | { acquired: false; expiredTxnId: string };

/**
 * `allowDocument`: the engine's own document paths (create, delete) may
 * lease a document's key; every other acquire of one is refused.
 */
export async function acquireLease(
  engine: EngineContext,
  options: CheckedAcquire,
  { allowDocument = false }: { allowDocument?: boolean } = {},
): Promise<LeaseRow> {
  const { namespace, key, ttlMs, owner, blockSeconds, txnId } = options;
  const deadline = blockSeconds > 0 ? engine.now() + blockSeconds * 1000 : blockSeconds === 0 ? Infinity : -Infinity;

  for (let attempt = 0; ; attempt++) {
    const result = await engine.metadata.transaction((tx) =>
      tryAcquire(tx, engine.now(), { namespace, key, ttlMs, owner, txnId, allowDocument }),
    );
    if (result.acquired) return result.lease;
    if ('expiredTxnId' in result) {
      // Lazy expiry: the holder's whole transaction rolls back, in a metadata
      // transaction of its own that takes that transaction's lock before its
      // keys' (we held this key's lock, so could not take it in order), and
      // we try again at once.
      const { expiredTxnId } = result;
      const outcome = await engine.metadata.transaction((tx) => expireTxn(tx, expiredTxnId, engine.now()));
      if (outcome) await finishTxn(engine, outcome, false);
      continue;
    }
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
  request: { namespace: string; key: string; ttlMs: number; owner: string; txnId: string | undefined; allowDocument: boolean },
): Promise<AcquireAttempt> {
  const { namespace, key } = request;
  // Joining: the transaction's lock before the key's (see lockTxnKeys).
  if (request.txnId !== undefined) await tx.lockTxn(request.txnId);
  const keyRow = await tx.lockKey(namespace, key);
  if (keyRow?.leaseId) {
    const holder = await tx.getLease(keyRow.leaseId);
    if (holder?.state === 'active') {
      if (holder.expiresAt > now) return { acquired: false, retryAfterMs: holder.expiresAt - now };
      return { acquired: false, expiredTxnId: holder.txnId };
    }
  }
  // A document (the document face) is its own key, named by its id: it
  // holds a committed attachment whose id is the key. Leasing that key
  // would let anyone overwrite or delete a document, which is immutable.
  if (!request.allowDocument && looksLikeId(key) && (await tx.findById({ namespace, key }, key, null))?.state === 'committed') {
    throw new AttacheError('document_key', `key "${key}" holds a document attachment; documents cannot be leased`);
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
  return { acquired: true, lease };
}

export type LeaseCheck =
  | { ok: true; lease: LeaseRow }
  | { ok: false; error: AttacheError; outcome?: TxnOutcome };

interface LockedLease {
  namespace: string;
  key: string;
  keyRow: KeyRow | undefined;
  /** The lease named by the credentials, read under the locks; undefined when unknown or on another key. */
  lease: LeaseRow | undefined;
}

/**
 * Takes the locks a lease-bound call needs, in the global order: the
 * lease's transaction first (see lockTxnKeys), then the key. A lease's
 * transaction id never changes, so the unlocked first read finds it.
 */
async function lockLease(tx: MetadataTx, credentials: CheckedCredentials): Promise<LockedLease> {
  const { namespace, key } = credentials;
  const known = await tx.getLease(credentials.leaseId);
  if (known) await tx.lockTxn(known.txnId);
  // The key's lock next: the lease is then read as its last change left it.
  const keyRow = await tx.lockKey(namespace, key);
  const lease = known && (await tx.getLease(credentials.leaseId));
  const onKey = lease !== undefined && lease.namespace === namespace && lease.key === key;
  return { namespace, key, keyRow, lease: onKey ? lease : undefined };
}

/**
 * The lease check of every lease-bound call, in the documented order:
 * lease_required → lease_expired → fencing_mismatch → txn_mismatch.
 * An expired lease found here is rolled back in the same transaction; the
 * caller commits that and then reports the error.
 */
export async function checkLease(tx: MetadataTx, credentials: CheckedCredentials, now: number): Promise<LeaseCheck> {
  return verifyLease(tx, await lockLease(tx, credentials), credentials, now);
}

async function verifyLease(
  tx: MetadataTx,
  { key, keyRow, lease }: LockedLease,
  credentials: CheckedCredentials,
  now: number,
): Promise<LeaseCheck> {
  if (!lease) {
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
  const mismatch = credentialsMismatch(credentials, lease);
  return mismatch ? { ok: false, error: mismatch } : { ok: true, lease };
}

/** Fencing token, then transaction id: checked on live leases and on replayed releases alike. */
function credentialsMismatch(credentials: CheckedCredentials, lease: LeaseRow): AttacheError | undefined {
  if (credentials.fencingToken !== undefined && credentials.fencingToken !== lease.fencingToken) {
    return new AttacheError('fencing_mismatch', `fencing token ${credentials.fencingToken} is not current`);
  }
  if (credentials.txnId !== lease.txnId) {
    return new AttacheError('txn_mismatch', 'the lease belongs to another transaction');
  }
  return undefined;
}

/**
 * Runs `fn` in one metadata transaction after a successful lease check.
 * A failed check that rolled an expired lease back still commits that
 * rollback before the error is thrown.
 */
export async function withLease<T>(
  engine: EngineContext,
  credentials: CheckedCredentials,
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
  engine: EngineContext,
  credentials: CheckedCredentials,
  ttlMs: number,
): Promise<LeaseRow> {
  return withLease(engine, credentials, async (tx, lease, now) => {
    const expiresAt = now + ttlMs;
    await tx.updateLease(lease.leaseId, { expiresAt });
    return { ...lease, expiresAt };
  });
}

/**
 * Commits (or rolls back) the lease's whole transaction and releases every
 * lease of it. Idempotent: a release replayed on an ended lease answers the
 * same when its transaction ended the way asked (credentials checked as on
 * a live lease), and an error when it did not: a commit of a rolled-back
 * transaction is `txn_rolled_back` (or `lease_expired` when it expired), a
 * rollback of a committed one `txn_committed`. A commit that did not happen
 * is never reported.
 */
export async function releaseLease(
  engine: EngineContext,
  credentials: CheckedCredentials,
  rollback: boolean,
): Promise<{ released: true }> {
  type Release = { done: true; outcome?: TxnOutcome; committed?: true } | { done: false; error: AttacheError; outcome?: TxnOutcome };
  const result = await engine.metadata.transaction(async (tx): Promise<Release> => {
    const now = engine.now();
    const held = await lockLease(tx, credentials);
    const { lease } = held;
    const live = lease?.state === 'active' && lease.expiresAt > now;
    if (lease && !live && (rollback || lease.state === 'released')) {
      // A replay (or the rollback of an expired lease): answered from the
      // transaction's outcome. A commit of an expired lease falls through to
      // the lease check below, which answers lease_expired.
      const mismatch = credentialsMismatch(credentials, lease);
      if (mismatch) return { done: false, error: mismatch };
      if (lease.state === 'active') return { done: true, outcome: await rollbackTxn(tx, lease.txnId, now, 'expired') };
      const committed = (await tx.getTxn(lease.txnId))?.state === 'committed';
      if (committed && rollback) {
        return { done: false, error: new AttacheError('txn_committed', 'the transaction already committed; nothing was rolled back') };
      }
      if (!committed && !rollback) {
        return {
          done: false,
          error: new AttacheError('txn_rolled_back', 'the transaction was rolled back; nothing was committed'),
        };
      }
      return { done: true };
    }
    const check = await verifyLease(tx, held, credentials, now);
    if (!check.ok) return check.outcome ? { done: false, error: check.error, outcome: check.outcome } : { done: false, error: check.error };
    if (rollback) return { done: true, outcome: await rollbackTxn(tx, check.lease.txnId, now, 'released') };
    // The transaction's keys are locked once, here; commit and rollback reuse what this read.
    const locked = await lockTxnKeys(tx, check.lease.txnId);
    const expiredPartner = locked.find((other) => other.expiresAt <= now);
    if (expiredPartner) {
      return {
        done: false,
        error: new AttacheError('lease_expired', `lease on key "${expiredPartner.key}" of this transaction expired; rolled back`),
        outcome: await rollbackTxn(tx, check.lease.txnId, now, 'expired', locked),
      };
    }
    return { done: true, outcome: await commitTxn(tx, check.lease.txnId, now, locked), committed: true };
  });
  if (result.outcome) await finishTxn(engine, result.outcome, result.done && result.committed === true);
  if (!result.done) throw result.error;
  return { released: true };
}
