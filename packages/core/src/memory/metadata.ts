// In-memory `MetadataStore` for tests and edge runtimes (Web APIs only).
// It keeps the same contract as the SQL store: one transaction at a time,
// all-or-nothing writes, the same unique constraints and the same sort order,
// so the shared port suite passes against both.
import type {
  AttachmentRow,
  AttachmentScope,
  BlobDataRow,
  EpochMillis,
  KeyRow,
  LeaseRow,
  MetadataStore,
  MetadataTx,
  NotOnKeyQuery,
  TxnRow,
  UploadPartRow,
  UploadRow,
} from '../ports.js';
import { isStagedPath } from '../paths.js';

export function memoryMetadata(): MetadataStore {
  const tables = {
    keys: new JournaledTable<KeyRow>(),
    leases: new JournaledTable<LeaseRow>(),
    txns: new JournaledTable<TxnRow>(),
    attachments: new JournaledTable<AttachmentRow>(),
    garbage: new JournaledTable<{ blobPath: string; enqueuedAt: EpochMillis }>(),
    uploads: new JournaledTable<UploadRow>(),
    uploadParts: new JournaledTable<UploadPartRow>(),
    blobData: new JournaledTable<BlobDataRow>(),
  };
  const allTables = Object.values(tables);
  // Tail of the promise chain that runs transactions one after another.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function runOne<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> {
    const handle = createTx(tables);
    try {
      const result = await fn(handle.tx);
      for (const table of allTables) table.commit();
      return result;
    } catch (error) {
      for (const table of allTables) table.rollback();
      throw error;
    } finally {
      handle.end();
    }
  }

  return {
    // Nothing here is durable, so `options.durable` changes nothing.
    transaction<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(new Error('memoryMetadata: the store is closed'));
      const run = queue.then(() => runOne(fn));
      queue = run.catch(() => undefined);
      return run;
    },
    async migrate(): Promise<void> {
      // Nothing to prepare: the tables are maps.
    },
    holdsBlobData: true,
    async close(): Promise<void> {
      closed = true;
      // Let transactions already queued finish, as a database would.
      await queue;
    },
  };
}

type Tables = {
  keys: JournaledTable<KeyRow>;
  leases: JournaledTable<LeaseRow>;
  txns: JournaledTable<TxnRow>;
  attachments: JournaledTable<AttachmentRow>;
  garbage: JournaledTable<{ blobPath: string; enqueuedAt: EpochMillis }>;
  uploads: JournaledTable<UploadRow>;
  uploadParts: JournaledTable<UploadPartRow>;
  blobData: JournaledTable<BlobDataRow>;
};

function createTx(tables: Tables): { tx: MetadataTx; end(): void } {
  const { keys, leases, txns, attachments, garbage, uploads, uploadParts, blobData } = tables;
  const partId = (uploadId: string, start: number) => `${uploadId}\u0000${start}`;
  let open = true;
  // Every method checks this first, so a handle that leaks past its
  // transaction fails loudly instead of writing outside any transaction.
  const assertOpen = (): void => {
    if (!open) throw new Error('memoryMetadata: transaction has already ended');
  };

  const tx: MetadataTx = {
    async lockKey(namespace, key) {
      assertOpen();
      return copy(keys.get(keyId(namespace, key)));
    },
    async putKey(row) {
      assertOpen();
      keys.set(keyId(row.namespace, row.key), { ...row });
    },

    async getLease(leaseId) {
      assertOpen();
      return copy(leases.get(leaseId));
    },
    async insertLease(row) {
      assertOpen();
      if (leases.get(row.leaseId)) throw uniqueViolation(`lease ${row.leaseId} already exists`);
      leases.set(row.leaseId, { ...row });
    },
    async updateLease(leaseId, patch) {
      assertOpen();
      const row = leases.get(leaseId);
      if (row) leases.set(leaseId, { ...row, ...definedFields(patch) });
    },
    async listActiveLeasesOfTxn(txnId) {
      assertOpen();
      return leases
        .values()
        .filter((row) => row.state === 'active' && row.txnId === txnId)
        .sort((a, b) => a.createdAt - b.createdAt || compareCodePoints(a.leaseId, b.leaseId))
        .map(copyRow);
    },
    async listExpiredLeases(now, limit) {
      assertOpen();
      return leases
        .values()
        .filter((row) => row.state === 'active' && row.expiresAt <= now)
        .sort((a, b) => a.expiresAt - b.expiresAt || compareCodePoints(a.leaseId, b.leaseId))
        .slice(0, Math.max(0, limit))
        .map(copyRow);
    },
    async pruneLeases(before) {
      assertOpen();
      let pruned = 0;
      for (const row of leases.values()) {
        if (row.state !== 'active' && row.expiresAt < before) {
          leases.delete(row.leaseId);
          pruned += 1;
        }
      }
      return pruned;
    },

    async pruneTxns(before) {
      assertOpen();
      const referenced = new Set(leases.values().map((lease) => lease.txnId));
      let pruned = 0;
      for (const row of txns.values()) {
        if (row.state !== 'active' && row.updatedAt < before && !referenced.has(row.txnId)) {
          txns.delete(row.txnId);
          pruned += 1;
        }
      }
      return pruned;
    },

    async lockTxn() {
      assertOpen();
      // Transactions run one at a time: holding one is holding every lock.
    },
    async getTxn(txnId) {
      assertOpen();
      return copy(txns.get(txnId));
    },
    async insertTxn(row) {
      assertOpen();
      if (txns.get(row.txnId)) throw uniqueViolation(`txn ${row.txnId} already exists`);
      txns.set(row.txnId, { ...row });
    },
    async updateTxn(txnId, patch) {
      assertOpen();
      const row = txns.get(txnId);
      if (row) txns.set(txnId, { ...row, ...definedFields(patch) });
    },

    async listAttachments(scope, txnId) {
      assertOpen();
      return attachments
        .values()
        .filter((row) => inScope(row, scope) && (row.state === 'committed' || (txnId !== undefined && row.txnId === txnId)))
        .sort(byNameCommittedFirst)
        .map(copyRow);
    },
    async getCommittedById(attachmentId) {
      assertOpen();
      return copy(attachments.values().find((row) => row.state === 'committed' && row.attachmentId === attachmentId));
    },
    async findByName(scope, name, txnId) {
      assertOpen();
      return copy(preferTxnRow(attachments.values().filter((row) => inScope(row, scope) && row.name === name), txnId));
    },
    async findById(scope, attachmentId, txnId) {
      assertOpen();
      return copy(
        preferTxnRow(attachments.values().filter((row) => inScope(row, scope) && row.attachmentId === attachmentId), txnId),
      );
    },
    async listStagedOfTxn(txnId) {
      assertOpen();
      return attachments
        .values()
        .filter((row) => row.state !== 'committed' && row.txnId === txnId)
        .sort(
          (a, b) =>
            compareCodePoints(a.namespace, b.namespace) || compareCodePoints(a.key, b.key) || byNameCommittedFirst(a, b),
        )
        .map(copyRow);
    },
    async insertAttachment(row) {
      assertOpen();
      if (attachments.get(row.versionId)) throw uniqueViolation(`attachment version ${row.versionId} already exists`);
      assertUniqueName(attachments, row);
      attachments.set(row.versionId, { ...row });
    },
    async updateAttachment(versionId, patch) {
      assertOpen();
      const row = attachments.get(versionId);
      if (!row) return;
      const updated = { ...row, ...definedFields(patch) };
      assertUniqueName(attachments, updated);
      attachments.set(versionId, updated);
    },
    async deleteAttachment(versionId) {
      assertOpen();
      attachments.delete(versionId);
    },
    async listUnpromoted(limit) {
      assertOpen();
      return attachments
        .values()
        .filter((row) => row.state === 'committed' && isStagedPath(row.blobPath))
        .sort((a, b) => a.updatedAt - b.updatedAt || compareCodePoints(a.versionId, b.versionId))
        .slice(0, Math.max(0, limit))
        .map(copyRow);
    },
    async listNotOnKey(query) {
      assertOpen();
      const after = query.afterVersionId;
      return attachments
        .values()
        .filter((row) => isNotOnKey(row, query) && (after === null || compareCodePoints(row.versionId, after) > 0))
        .sort((a, b) => compareCodePoints(a.versionId, b.versionId))
        .slice(0, Math.max(0, query.limit))
        .map(copyRow);
    },
    async countNotOnKey(query) {
      assertOpen();
      let rows = 0;
      let bytes = 0;
      for (const row of attachments.values()) {
        if (!isNotOnKey(row, query)) continue;
        rows += 1;
        bytes += row.size;
      }
      return { rows, bytes };
    },
    async repointEncrypted(versionId, change) {
      assertOpen();
      const row = attachments.get(versionId);
      if (row?.state !== 'committed' || row.blobPath !== change.fromBlobPath) return false;
      attachments.set(versionId, { ...row, blobPath: change.toBlobPath, keyId: change.keyId });
      return true;
    },
    async existingVersionIds(versionIds) {
      assertOpen();
      return new Set(versionIds.filter((versionId) => attachments.get(versionId) !== undefined));
    },

    async referencedBlobPaths(paths) {
      assertOpen();
      const wanted = new Set(paths);
      const found = new Set<string>();
      for (const row of attachments.values()) {
        if (wanted.has(row.blobPath)) found.add(row.blobPath);
      }
      return found;
    },

    async getUpload(uploadId) {
      assertOpen();
      return copy(uploads.get(uploadId));
    },
    async insertUpload(row) {
      assertOpen();
      if (uploads.get(row.uploadId)) throw uniqueViolation(`upload ${row.uploadId} already exists`);
      uploads.set(row.uploadId, { ...row });
    },
    async advanceUpload(uploadId, from, part, patch) {
      assertOpen();
      const row = uploads.get(uploadId);
      if (!row || row.state !== 'receiving' || row.offset !== from) return false;
      if (uploadParts.get(partId(uploadId, part.start))) throw uniqueViolation(`upload part ${uploadId}@${part.start} already exists`);
      uploads.set(uploadId, { ...row, ...patch });
      uploadParts.set(partId(uploadId, part.start), { ...part });
      return true;
    },
    async updateUpload(uploadId, patch) {
      assertOpen();
      const row = uploads.get(uploadId);
      if (row) uploads.set(uploadId, { ...row, ...definedFields(patch) });
    },
    async listUploadParts(uploadId) {
      assertOpen();
      return uploadParts
        .values()
        .filter((part) => part.uploadId === uploadId)
        .sort((a, b) => a.start - b.start)
        .map(copyRow);
    },
    async deleteUpload(uploadId) {
      assertOpen();
      uploads.delete(uploadId);
      for (const part of uploadParts.values()) if (part.uploadId === uploadId) uploadParts.delete(partId(uploadId, part.start));
    },
    async listAbandonedUploads(now, limit) {
      assertOpen();
      const stranded = (row: UploadRow) =>
        row.state === 'receiving' && row.txnId !== null && txns.get(row.txnId)?.state !== 'active';
      return uploads
        .values()
        .filter((row) => row.expiresAt <= now || stranded(row))
        .sort((a, b) => a.expiresAt - b.expiresAt || compareCodePoints(a.uploadId, b.uploadId))
        .slice(0, Math.max(0, limit))
        .map(copyRow);
    },

    async enqueueGarbage(paths, now) {
      assertOpen();
      for (const blobPath of paths) {
        // Keep the first enqueue time, as the SQL store's `on conflict do nothing` does.
        if (!garbage.get(blobPath)) garbage.set(blobPath, { blobPath, enqueuedAt: now });
      }
    },
    async listGarbage(limit, enqueuedBefore = Infinity) {
      assertOpen();
      return garbage
        .values()
        .filter((entry) => entry.enqueuedAt <= enqueuedBefore)
        .sort((a, b) => a.enqueuedAt - b.enqueuedAt || compareCodePoints(a.blobPath, b.blobPath))
        .slice(0, Math.max(0, limit))
        .map((entry) => entry.blobPath);
    },
    async queuedGarbage(paths) {
      assertOpen();
      return new Set(paths.filter((blobPath) => garbage.get(blobPath) !== undefined));
    },
    async dequeueGarbage(paths) {
      assertOpen();
      for (const blobPath of paths) garbage.delete(blobPath);
    },

    // Copies in and out, as a database would: callers may reuse their buffers.
    async putBlobData(row) {
      assertOpen();
      blobData.set(row.path, { ...row, data: row.data.slice() });
    },
    async getBlobData(path) {
      assertOpen();
      const row = blobData.get(path);
      return row && { ...row, data: row.data.slice() };
    },
    async statBlobData(path) {
      assertOpen();
      const row = blobData.get(path);
      return row && { path, size: row.data.byteLength, modifiedAt: row.createdAt };
    },
    async deleteBlobData(path) {
      assertOpen();
      const found = blobData.get(path) !== undefined;
      blobData.delete(path);
      return found;
    },
    async moveBlobData(from, to) {
      assertOpen();
      const row = blobData.get(from);
      if (!row) return false;
      blobData.delete(from);
      blobData.set(to, { ...row, path: to });
      return true;
    },
    async listBlobData(prefix, afterPath, limit) {
      assertOpen();
      return blobData
        .values()
        .filter((row) => row.path.startsWith(prefix) && (afterPath === undefined || compareCodePoints(row.path, afterPath) > 0))
        .sort((a, b) => compareCodePoints(a.path, b.path))
        .slice(0, Math.max(0, limit))
        .map((row) => ({ path: row.path, size: row.data.byteLength, modifiedAt: row.createdAt }));
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
 * A map that records the first prior value of every entry written during a
 * transaction, so a rollback restores exactly what was there (cost: the
 * writes made, not the table size).
 */
class JournaledTable<Row> {
  readonly #rows = new Map<string, Row>();
  // Prior value of each entry touched in the running transaction; `undefined` = absent.
  readonly #undo = new Map<string, Row | undefined>();

  get(id: string): Row | undefined {
    return this.#rows.get(id);
  }

  values(): Row[] {
    return [...this.#rows.values()];
  }

  set(id: string, row: Row): void {
    this.#remember(id);
    this.#rows.set(id, row);
  }

  delete(id: string): void {
    this.#remember(id);
    this.#rows.delete(id);
  }

  commit(): void {
    this.#undo.clear();
  }

  rollback(): void {
    for (const [id, prior] of this.#undo) {
      if (prior === undefined) this.#rows.delete(id);
      else this.#rows.set(id, prior);
    }
    this.#undo.clear();
  }

  #remember(id: string): void {
    if (!this.#undo.has(id)) this.#undo.set(id, this.#rows.get(id));
  }
}

// Mirrors the SQL store's partial unique indexes: one committed row per name
// and key, and one staged/tombstone row per name, key and transaction.
function assertUniqueName(table: JournaledTable<AttachmentRow>, candidate: AttachmentRow): void {
  const clash = table.values().find(
    (row) =>
      row.versionId !== candidate.versionId &&
      inScope(row, candidate) &&
      row.name === candidate.name &&
      (candidate.state === 'committed'
        ? row.state === 'committed'
        : row.state !== 'committed' && row.txnId === candidate.txnId),
  );
  if (clash) {
    throw uniqueViolation(
      `a ${clash.state} attachment named "${candidate.name}" already exists in ${candidate.namespace}/${candidate.key}`,
    );
  }
}

function isNotOnKey(row: AttachmentRow, query: NotOnKeyQuery): boolean {
  if (row.state !== 'committed') return false;
  return row.keyId === null ? query.includePlaintext : row.keyId !== query.keyId;
}

function uniqueViolation(detail: string): Error {
  return new Error(`memoryMetadata: unique constraint violated: ${detail}`);
}

/** The transaction's own staged/tombstone row when there is one, else the committed row. */
function preferTxnRow(rows: AttachmentRow[], txnId: string | null): AttachmentRow | undefined {
  const ofTxn = txnId === null ? undefined : rows.find((row) => row.state !== 'committed' && row.txnId === txnId);
  return ofTxn ?? rows.find((row) => row.state === 'committed');
}

function inScope(row: AttachmentScope, scope: AttachmentScope): boolean {
  return row.namespace === scope.namespace && row.key === scope.key;
}

function byNameCommittedFirst(a: AttachmentRow, b: AttachmentRow): number {
  return compareCodePoints(a.name, b.name) || Number(a.state !== 'committed') - Number(b.state !== 'committed');
}

/**
 * Code point order, which equals UTF-8 byte order: what SQLite's BINARY
 * collation and PostgreSQL's "C" collation give. (`<` on JS strings compares
 * UTF-16 units and puts astral characters before U+E000–U+FFFF.)
 */
export function compareCodePoints(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const l = left.next();
    const r = right.next();
    if (l.done || r.done) return Number(!l.done) - Number(!r.done);
    const difference = (l.value.codePointAt(0) ?? 0) - (r.value.codePointAt(0) ?? 0);
    if (difference !== 0) return difference;
  }
}

function keyId(namespace: string, key: string): string {
  // NUL cannot appear in a valid namespace or key, so ids never collide.
  return `${namespace}\u0000${key}`;
}

/** Drops `undefined` fields so a patch like `{ state: undefined }` leaves the stored value alone, as in SQL. */
function definedFields<Patch extends object>(patch: Patch): Partial<Patch> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<Patch>;
}

function copy<Row extends object>(row: Row | undefined): Row | undefined {
  return row === undefined ? undefined : { ...row };
}

function copyRow<Row extends object>(row: Row): Row {
  return { ...row };
}
