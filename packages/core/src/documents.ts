// The document face over the engine: each upload becomes a new committed
// attachment that is its own key (`key = id`), so concurrent creates never
// contend. The uploads of one call commit together (see createDocuments).
// Documents are immutable: their keys are leased only by the engine itself,
// here (`allowDocument`).
import { deleteStaged, stageAll, stageWritten, toAttachment, writeUpload, type PreparedUpload, type StageOptions } from './attachments.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { isUuidV7, newId } from './ids.js';
import { committedBlobPath } from './paths.js';
import { acquireLease, keepaliveLease, releaseLease } from './lease.js';
import type { CheckedAcquire, CheckedCredentials } from './lease-rules.js';
import type { LeaseRow } from './ports.js';
import type { Attachment, DocumentUpload } from './types.js';

const DOCUMENT_OWNER = 'attache:create';

/** Store-wide settings of the document face, checked when the store is made. */
export interface DocumentSettings {
  /** Where documents go unless a call names a namespace (checked). */
  namespace: string;
  /** Lease TTL while an upload streams, renewed while bytes flow. */
  leaseMs: number;
}

function credentialsOf(row: LeaseRow): CheckedCredentials {
  return { namespace: row.namespace, key: row.key, leaseId: row.leaseId, txnId: row.txnId, fencingToken: row.fencingToken };
}

function documentLease(settings: DocumentSettings, namespace: string, key: string, extra: Partial<CheckedAcquire>): CheckedAcquire {
  return {
    namespace,
    key,
    ttlMs: settings.leaseMs,
    owner: DOCUMENT_OWNER,
    blockSeconds: -1,
    txnId: undefined,
    signal: undefined,
    ...extra,
  };
}

/**
 * `namespace` arrives checked. Parts are checked as they are taken.
 *
 * One document (the usual call) needs no transaction: its key is new and
 * nobody else can touch it, so its blob goes straight to the committed path
 * and one metadata write of its committed row publishes it. A crash before
 * that write leaves an unreferenced blob, which the sweeper deletes once it
 * is older than the orphan grace. With a second document the first joins a
 * transaction (lease + staged row) with the others, so all of them commit
 * together: a blob without a row must not wait for later uploads to finish,
 * however long they take, because the orphan grace would not protect it.
 */
export async function createDocuments(
  engine: EngineContext,
  settings: DocumentSettings,
  // `storedBlob`: bytes already durable (a resumable upload's only part), adopted instead of streamed.
  parts: AsyncIterable<DocumentUpload & Pick<StageOptions, 'storedBlob'>> | Iterable<DocumentUpload & Pick<StageOptions, 'storedBlob'>>,
  namespace: string,
): Promise<Attachment[]> {
  const txnId = newId();
  const held: CheckedCredentials[] = [];
  const created: Attachment[] = [];
  /** The first document, written straight to its committed path, while it is the only one. */
  let alone: PreparedUpload | undefined;
  const joinTransaction = async (key: string): Promise<CheckedCredentials> => {
    const credentials = credentialsOf(await acquireLease(engine, documentLease(settings, namespace, key, { txnId }), { allowDocument: true }));
    held.push(credentials);
    return credentials;
  };
  try {
    for await (const part of parts) {
      const { id: chosenId, ...upload } = part;
      if (chosenId !== undefined && !isUuidV7(chosenId)) {
        throw new AttacheError('invalid_ref', `id must be a UUIDv7 in lowercase hex (8-4-4-4-12), not "${String(chosenId).slice(0, 64)}"`);
      }
      // The seed face passes the id it handed out already (`attachmentId`); it is new by construction.
      const attachmentId = chosenId ?? (upload as StageOptions).attachmentId ?? newId();
      // A chosen id must be claimed (claimId), which takes a transaction.
      if (held.length === 0 && alone === undefined && chosenId === undefined) {
        alone = await writeUpload(engine, upload, {
          scope: { namespace, key: attachmentId },
          txnId: null,
          attachmentId,
          blobPathOf: (versionId) => committedBlobPath(namespace, attachmentId, versionId),
        });
        continue;
      }
      if (alone !== undefined) {
        const first = alone;
        alone = undefined; // stageWritten deletes its blob if it fails
        const credentials = await joinTransaction(first.row.key);
        created.push((await stageWritten(engine, credentials, [first])).attachments[0]!);
      }
      // A chosen id is claimed first, in every namespace at once (see claimId).
      if (chosenId !== undefined) held.push(credentialsOf(await claimId(engine, settings, chosenId, txnId)));
      const credentials = await joinTransaction(attachmentId);
      // Checked under the claim, so no other create of this id can slip in between.
      if (chosenId !== undefined) await refuseTakenId(engine, namespace, chosenId);
      const renewEveryMs = settings.leaseMs / 3;
      let renewedAt = engine.now();
      const stage: StageOptions = {
        ...upload,
        attachmentId,
        // The key's first lease ever: nothing in it to overwrite.
        freshKey: credentials.fencingToken === 1,
        // Long uploads renew the transaction's leases (earlier documents',
        // the id claim) while bytes keep flowing.
        onProgress: async () => {
          if (engine.now() - renewedAt < renewEveryMs) return;
          renewedAt = engine.now();
          for (const lease of held) await keepaliveLease(engine, lease, settings.leaseMs);
        },
      };
      const { attachments } = await stageAll(engine, credentials, [stage]);
      created.push(attachments[0]!);
    }
    if (alone !== undefined) return [await publishAlone(engine, alone)];
    if (held.length === 0) throw new AttacheError('invalid_argument', 'parts is empty: nothing to create');
    await releaseLease(engine, held[0]!, false);
    return created;
  } catch (error) {
    if (alone !== undefined) await engine.blobs.delete(alone.row.blobPath).catch(() => {});
    if (held[0]) await releaseLease(engine, held[0], true).catch(() => {});
    throw error;
  }
}

/** Publishes a lone document whose blob is at its committed path: one metadata write. */
async function publishAlone(engine: EngineContext, written: PreparedUpload): Promise<Attachment> {
  engine.crashPoint('upload.after-blob');
  await engine.metadata.transaction((tx) => tx.insertAttachment(written.row));
  engine.crashPoint('commit.after-metadata');
  return toAttachment(written.row);
}

/**
 * Namespace of the leases that claim a caller-chosen id. Outside the
 * namespace grammar ("~"), so no caller can lease it. An id is unique across
 * namespaces, but a document's own lease is per namespace: without this
 * claim, two creates of one id in two namespaces could both find it free.
 */
const ID_CLAIMS_NAMESPACE = '~ids';

/**
 * Leases `id` in the claims namespace as part of transaction `txnId`: held
 * until that transaction commits or rolls back, like the document's own
 * lease. Another create of the id meanwhile is refused with
 * `attachment_exists`: it is being created.
 */
async function claimId(engine: EngineContext, settings: DocumentSettings, id: string, txnId: string): Promise<LeaseRow> {
  try {
    return await acquireLease(engine, documentLease(settings, ID_CLAIMS_NAMESPACE, id, { txnId }), { allowDocument: true });
  } catch (error) {
    if (error instanceof AttacheError && error.code === 'waiting') {
      throw new AttacheError('attachment_exists', `an attachment with id ${id} is being created`);
    }
    throw error;
  }
}

/** A chosen id must be new: no committed attachment has it, and no attachment lives under it as a key. */
async function refuseTakenId(engine: EngineContext, namespace: string, id: string): Promise<void> {
  const taken = await engine.metadata.transaction(
    async (tx) => (await tx.getCommittedById(id)) ?? (await tx.listAttachments({ namespace, key: id }))[0],
  );
  if (taken) throw new AttacheError('attachment_exists', `an attachment with id ${id} exists already`);
}

/** Deletes a document (an attachment that is its own key); `deleted: false` for an unknown id or a keyed attachment. */
export async function deleteDocument(
  engine: EngineContext,
  settings: DocumentSettings,
  attachmentId: string,
): Promise<{ deleted: boolean }> {
  const row = await engine.metadata.transaction((tx) => tx.getCommittedById(attachmentId));
  // Only a document (its own key) is deleted here; keyed attachments go through their lease.
  if (!row || row.key !== row.attachmentId) return { deleted: false };
  const lease = await acquireLease(engine, documentLease(settings, row.namespace, row.key, { blockSeconds: 10 }), {
    allowDocument: true,
  });
  const credentials = credentialsOf(lease);
  try {
    const deleted = await deleteStaged(engine, credentials, { id: attachmentId });
    await releaseLease(engine, credentials, false);
    return { deleted: deleted > 0 };
  } catch (error) {
    await releaseLease(engine, credentials, true).catch(() => {});
    throw error;
  }
}
