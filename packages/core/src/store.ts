// createAttachmentStore: the engine behind both faces of the store — the
// seed `IAttachmentStore` (document attachments, each its own key) and the
// keyed, leased face (acquire → attach → release).
import {
  deleteStaged,
  findVisible,
  listVisible,
  openRow,
  stageAll,
  toAttachment,
  unstage,
  type StageOptions,
} from './attachments.js';
import { KeyWaiters, type Engine } from './engine.js';
import { AttacheError } from './errors.js';
import { newId } from './ids.js';
import { acquireLease, keepaliveLease, releaseLease, withLease } from './lease.js';
import { checkKey, checkName, checkNamespace, DEFAULT_NAMESPACE } from './names.js';
import type { AttachmentRow, LeaseRow } from './ports.js';
import { attachmentIdOf, parseAttachmentRef } from './refs.js';
import type {
  AttachmentHeader,
  AttachmentRef,
  AttachmentResponse,
  CreateAttachmentHandle,
  CreateAttachmentOptions,
  CreateAttachmentResult,
  GetAttachmentParams,
} from './seed.js';
import { sweep } from './sweep.js';
import type {
  Attachment,
  AttachmentStore,
  AttachmentStoreOptions,
  CreateDocumentsOptions,
  DocumentUpload,
  Lease,
  LeaseCredentials,
  LeaseInfo,
  OpenOptions,
  SweepReport,
} from './types.js';

const TIB = 1024 ** 4;
const DOCUMENT_OWNER = 'attache:create';

export function createAttachmentStore(options: AttachmentStoreOptions): AttachmentStore {
  const maxBytes = options.maxBytes ?? TIB;
  if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer');
  const engine: Engine = {
    metadata: options.metadata,
    blobs: options.blobs,
    now: options.now ?? Date.now,
    maxBytes,
    orphanGraceMs: (options.orphanGraceSeconds ?? 60) * 1000,
    waiters: new KeyWaiters(),
  };
  const documentNamespace = checkNamespace(options.documentNamespace ?? DEFAULT_NAMESPACE);
  const documentLeaseSeconds = options.documentLeaseSeconds ?? 300;

  let migrated: Promise<void> | undefined;
  const ready = () => (migrated ??= engine.metadata.migrate());
  /** Every public method waits for the schema first; a failed migration is retried on the next call. */
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      await ready();
    } catch (error) {
      migrated = undefined;
      throw error;
    }
    return fn();
  };

  // Releases committed by other processes wake this process's blocked acquires.
  const stopListening = engine.metadata.onRelease?.((namespace, key) => engine.waiters.notify(namespace, key));

  let closed = false;
  let sweeping: Promise<SweepReport> | undefined;
  const sweepOnce = () =>
    (sweeping ??= run(() => sweep(engine)).finally(() => {
      sweeping = undefined;
    }));
  const sweepSeconds = options.sweepIntervalSeconds ?? 30;
  const timer =
    sweepSeconds > 0
      ? setInterval(() => {
          sweepOnce().catch((error: unknown) => console.error('attache: sweep failed', error));
        }, sweepSeconds * 1000)
      : undefined;
  // Never keep a process alive just for the sweeper.
  (timer as { unref?: () => void } | undefined)?.unref?.();

  function leaseHandle(row: Pick<LeaseRow, 'leaseId' | 'txnId' | 'namespace' | 'key' | 'owner' | 'fencingToken' | 'expiresAt'>): Lease {
    const credentials: LeaseCredentials = {
      namespace: row.namespace,
      key: row.key,
      leaseId: row.leaseId,
      txnId: row.txnId,
      fencingToken: row.fencingToken,
    };
    return bindLease(credentials, {
      leaseId: row.leaseId,
      txnId: row.txnId,
      namespace: row.namespace,
      key: row.key,
      owner: row.owner,
      fencingToken: row.fencingToken,
      expiresAt: new Date(row.expiresAt),
    });
  }

  function bindLease(credentials: LeaseCredentials, info: LeaseInfo): Lease {
    const lease: Lease = {
      ...info,
      attach: async (attachOptions) => {
        const { attachments, noop } = await run(() => stageAll(engine, credentials, [attachOptions]));
        return { attachment: attachments[0]!, noop };
      },
      attachAll: (parts) => run(() => stageAll(engine, credentials, parts)),
      list: () =>
        run(() =>
          withLease(engine, credentials, (tx, held) => listVisible(tx, held, held.txnId)),
        ).then((rows) => rows.map(toAttachment)),
      get: (selector) =>
        run(() => withLease(engine, credentials, (tx, held) => findVisible(tx, held, selector, held.txnId))).then(
          (row) => {
            if (!row) throw new AttacheError('attachment_not_found', 'attachment not found');
            return toAttachment(row);
          },
        ),
      open: (selector, openOptions) =>
        run(() =>
          openRow(
            engine,
            () => withLease(engine, credentials, (tx, held) => findVisible(tx, held, selector, held.txnId)),
            openOptions,
          ),
        ),
      delete: (selector) => run(() => deleteStaged(engine, credentials, selector)).then((n) => ({ deleted: n > 0 })),
      deleteAll: () => run(() => deleteStaged(engine, credentials, 'all')).then((deleted) => ({ deleted })),
      unstage: (selector) => run(() => unstage(engine, credentials, selector)).then((unstaged) => ({ unstaged })),
      keepalive: async ({ ttlSeconds }) => {
        const row = await run(() => keepaliveLease(engine, credentials, ttlSeconds));
        lease.expiresAt = new Date(row.expiresAt);
        return { ...info, expiresAt: lease.expiresAt, fencingToken: row.fencingToken };
      },
      release: (releaseOptions) => run(() => releaseLease(engine, credentials, releaseOptions?.rollback ?? false)),
    };
    return lease;
  }

  async function findPublic(
    selector: { namespace?: string; key?: string; name?: string; id?: string },
  ): Promise<AttachmentRow | undefined> {
    return engine.metadata.transaction(async (tx) => {
      if (selector.key === undefined || selector.key === '') {
        if (selector.id === undefined) throw new AttacheError('missing_key', 'key is required');
        return tx.getCommittedById(selector.id);
      }
      const scope = { namespace: checkNamespace(selector.namespace), key: checkKey(selector.key) };
      if (selector.name !== undefined) return findVisible(tx, scope, { name: selector.name }, null);
      if (selector.id !== undefined) return findVisible(tx, scope, { id: selector.id }, null);
      throw new AttacheError('missing_name', 'name or id is required');
    });
  }

  async function createDocuments(
    parts: AsyncIterable<DocumentUpload> | Iterable<DocumentUpload>,
    createOptions: CreateDocumentsOptions = {},
  ): Promise<Attachment[]> {
    const namespace = createOptions.namespace === undefined ? documentNamespace : checkNamespace(createOptions.namespace);
    // One transaction spanning one key per document: they commit together.
    const txnId = newId();
    const leases: Lease[] = [];
    const created: Attachment[] = [];
    try {
      for await (const part of parts) {
        const attachmentId = (part as StageOptions).attachmentId ?? newId();
        const row = await acquireLease(
          engine,
          { namespace, key: attachmentId, ttlSeconds: documentLeaseSeconds, owner: DOCUMENT_OWNER, txnId },
          { allowDocument: true },
        );
        const lease = leaseHandle(row);
        leases.push(lease);
        const renewEveryMs = (documentLeaseSeconds * 1000) / 3;
        let renewedAt = engine.now();
        const stage: StageOptions = {
          ...part,
          attachmentId,
          // Long uploads renew their lease while bytes keep flowing.
          onProgress: async () => {
            if (engine.now() - renewedAt < renewEveryMs) return;
            renewedAt = engine.now();
            await keepaliveLease(engine, lease, documentLeaseSeconds);
          },
        };
        const { attachments } = await stageAll(engine, lease, [stage]);
        created.push(attachments[0]!);
      }
      if (leases.length === 0) throw new AttacheError('invalid_body', 'no attachment in the request');
      await releaseLease(engine, leases[0]!, false);
      return created;
    } catch (error) {
      if (leases[0]) await releaseLease(engine, leases[0], true).catch(() => {});
      throw error;
    }
  }

  async function deleteDocument(attachmentId: string): Promise<{ deleted: boolean }> {
    const row = await engine.metadata.transaction((tx) => tx.getCommittedById(attachmentId));
    // Only a document (its own key) is deleted here; keyed attachments go through their lease.
    if (!row || row.key !== row.attachmentId) return { deleted: false };
    const lease = leaseHandle(
      await acquireLease(
        engine,
        { namespace: row.namespace, key: row.key, ttlSeconds: documentLeaseSeconds, owner: DOCUMENT_OWNER, blockSeconds: 10 },
        { allowDocument: true },
      ),
    );
    try {
      const { deleted } = await lease.delete({ id: attachmentId });
      await lease.release();
      return { deleted };
    } catch (error) {
      await lease.release({ rollback: true }).catch(() => {});
      throw error;
    }
  }

  function header(attachment: Attachment): AttachmentHeader {
    return {
      attachmentId: attachment.id,
      mimeType: attachment.contentType,
      extension: attachment.extension,
      hash: attachment.crc32,
    };
  }

  const store: AttachmentStore = {
    maxBytes,

    create(createOptions: CreateAttachmentOptions): CreateAttachmentHandle {
      const attachmentId = newId();
      const sizeBytes = createOptions.sizeBytes;
      // The engine reads `channel.readable`; the caller's `sink` feeds it. No
      // queue on either side, so the caller's writes wait for the blob store.
      const channel = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 1 }, { highWaterMark: 0 });
      const feed = channel.writable.getWriter();
      const done = (async (): Promise<CreateAttachmentResult> => {
        try {
          const fileName = checkName(createOptions.fileName);
          if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
            throw new AttacheError('size_mismatch', 'sizeBytes must be a non-negative integer');
          }
          const upload: StageOptions = {
            name: fileName,
            body: channel.readable,
            contentType: createOptions.mimeType,
            expectedSize: sizeBytes,
            attachmentId,
          };
          if (createOptions.extension !== undefined) upload.extension = createOptions.extension;
          const [attachment] = await run(() => createDocuments([upload]));
          return { header: header(attachment!), ref: `attachment://${attachment!.id}` };
        } catch (error) {
          // The writer sees the failure too, instead of hanging on backpressure.
          await feed.abort(error).catch(() => {});
          throw error;
        }
      })();
      // `done` still rejects for whoever awaits it; an ignored failure must
      // not crash the process as an unhandled rejection.
      done.catch(() => {});

      let received = 0;
      const sink = new WritableStream<Uint8Array>(
        {
          async write(chunk) {
            received += chunk instanceof Uint8Array ? chunk.byteLength : 0;
            if (received > sizeBytes) {
              // Refused here, before the engine reads it: the caller's source
              // stops at the first chunk too many.
              const error = new AttacheError('size_mismatch', `body is larger than the declared ${sizeBytes} bytes`);
              await feed.abort(error).catch(() => {});
              throw error;
            }
            await feed.write(chunk);
          },
          // Resolves only once the attachment is stored, and rejects as `done`
          // does (e.g. `size_mismatch` when fewer bytes arrived), so
          // `source.pipeTo(sink)` reports the outcome of the upload.
          async close() {
            await feed.close().catch(() => {});
            await done;
          },
          async abort(reason) {
            await feed.abort(reason).catch(() => {});
          },
        },
        { highWaterMark: 1 },
      );
      return { attachmentId, sink, done };
    },

    async stat(attachmentId: string): Promise<AttachmentHeader> {
      // Accepts the ref too: documents store refs, and `stat(ref)` type-checks.
      const id = attachmentIdOf(attachmentId);
      const row = await run(() => engine.metadata.transaction((tx) => tx.getCommittedById(id)));
      if (!row) throw new AttacheError('attachment_not_found', `attachment ${id} not found`);
      return header(toAttachment(row));
    },

    async get(ref: AttachmentRef, params?: GetAttachmentParams, abortSignal?: AbortSignal): Promise<AttachmentResponse> {
      const { attachmentId: id } = parseAttachmentRef(ref);
      const openOptions: OpenOptions = {};
      if (params?.range) openOptions.range = params.range;
      if (abortSignal) openOptions.signal = abortSignal;
      const opened = await run(() =>
        openRow(engine, () => engine.metadata.transaction((tx) => tx.getCommittedById(id)), openOptions),
      );
      return { header: header(opened.attachment), body: opened.body };
    },

    acquire: async (acquireOptions) => leaseHandle(await run(() => acquireLease(engine, acquireOptions))),

    lease(credentials: LeaseCredentials): Lease {
      const namespace = checkNamespace(credentials.namespace);
      return bindLease(
        { ...credentials, namespace },
        {
          leaseId: credentials.leaseId,
          txnId: credentials.txnId,
          namespace,
          key: credentials.key,
          owner: '',
          fencingToken: credentials.fencingToken ?? 0,
          expiresAt: new Date(0),
        },
      );
    },

    createDocuments: (parts, createOptions) => run(() => createDocuments(parts, createOptions)),

    deleteDocument: (attachmentId) => run(() => deleteDocument(attachmentId)),

    listAttachments: async (scope) => {
      const namespace = checkNamespace(scope.namespace);
      const key = checkKey(scope.key);
      const rows = await run(() => engine.metadata.transaction((tx) => listVisible(tx, { namespace, key }, null)));
      return rows.map(toAttachment);
    },

    getAttachment: async (selector) => {
      const row = await run(() => findPublic(selector));
      if (!row) throw new AttacheError('attachment_not_found', 'attachment not found');
      return toAttachment(row);
    },

    openAttachment: (selector, openOptions) => run(() => openRow(engine, () => findPublic(selector), openOptions)),

    sweep: sweepOnce,

    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      stopListening?.();
      await sweeping?.catch(() => {});
      await engine.blobs.close?.();
      await engine.metadata.close();
    },
  };
  return store;
}
