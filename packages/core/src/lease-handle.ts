// The `Lease` object of the keyed face: binds checked credentials to the
// engine calls a lease holder makes. Every method checks its own arguments
// (selectors, TTL) once, here, and passes checked values inward; the lease
// itself is verified by the metadata store on every call (lease.ts).
import { deleteStaged, findVisible, listVisible, openRow, stageAll, toAttachment, unstage } from './attachments.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { keepaliveLease, releaseLease, withLease } from './lease.js';
import { checkTtlSeconds, type CheckedCredentials } from './lease-rules.js';
import type { MigrationGate } from './migration-gate.js';
import { checkSelector } from './names.js';
import type { LeaseRow } from './ports.js';
import type { Lease, LeaseInfo } from './types.js';

type LeaseFields = Pick<LeaseRow, 'leaseId' | 'txnId' | 'namespace' | 'key' | 'owner' | 'fencingToken' | 'expiresAt'>;

/** The handle `acquire` returns: everything known from the lease row just granted. */
export function leaseFromRow(engine: EngineContext, gate: MigrationGate, row: LeaseFields): Lease {
  const credentials: CheckedCredentials = {
    namespace: row.namespace,
    key: row.key,
    leaseId: row.leaseId,
    txnId: row.txnId,
    fencingToken: row.fencingToken,
  };
  return bindLease(engine, gate, credentials, {
    leaseId: row.leaseId,
    txnId: row.txnId,
    namespace: row.namespace,
    key: row.key,
    owner: row.owner,
    fencingToken: row.fencingToken,
    expiresAt: new Date(row.expiresAt),
  });
}

/** The handle `store.lease(credentials)` rebuilds (HTTP): owner and expiry are not known until a call answers. */
export function leaseFromCredentials(engine: EngineContext, gate: MigrationGate, credentials: CheckedCredentials): Lease {
  return bindLease(engine, gate, credentials, {
    leaseId: credentials.leaseId,
    txnId: credentials.txnId,
    namespace: credentials.namespace,
    key: credentials.key,
    owner: '',
    fencingToken: credentials.fencingToken ?? 0,
    expiresAt: new Date(0),
  });
}

function bindLease(engine: EngineContext, gate: MigrationGate, credentials: CheckedCredentials, info: LeaseInfo): Lease {
  const find = (selector: Parameters<Lease['get']>[0]) => {
    const checked = checkSelector(selector);
    return () => withLease(engine, credentials, (tx, held) => findVisible(tx, held, checked, held.txnId));
  };
  const lease: Lease = {
    ...info,
    attach: async (attachOptions) => {
      const { attachments, noop } = await gate(() => stageAll(engine, credentials, [attachOptions]));
      return { attachment: attachments[0]!, noop };
    },
    attachAll: (parts) => gate(() => stageAll(engine, credentials, parts)),
    list: async () => {
      const rows = await gate(() => withLease(engine, credentials, (tx, held) => listVisible(tx, held, held.txnId)));
      return rows.map(toAttachment);
    },
    get: async (selector) => {
      const row = await gate(find(selector));
      if (!row) throw new AttacheError('attachment_not_found', 'attachment not found');
      return toAttachment(row);
    },
    open: async (selector, openOptions) => {
      const lookup = find(selector);
      return gate(() => openRow(engine, lookup, openOptions));
    },
    delete: async (selector) => {
      const checked = checkSelector(selector);
      const deleted = await gate(() => deleteStaged(engine, credentials, checked));
      return { deleted: deleted > 0 };
    },
    deleteAll: async () => ({ deleted: await gate(() => deleteStaged(engine, credentials, 'all')) }),
    unstage: async (selector) => {
      const checked = checkSelector(selector);
      return { unstaged: await gate(() => unstage(engine, credentials, checked)) };
    },
    keepalive: async ({ ttlSeconds }) => {
      const ttlMs = checkTtlSeconds(ttlSeconds);
      const row = await gate(() => keepaliveLease(engine, credentials, ttlMs));
      lease.expiresAt = new Date(row.expiresAt);
      return { ...info, expiresAt: lease.expiresAt, fencingToken: row.fencingToken };
    },
    release: (releaseOptions) => gate(() => releaseLease(engine, credentials, releaseOptions?.rollback ?? false)),
  };
  return lease;
}
