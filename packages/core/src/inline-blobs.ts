// Small blobs inline in the metadata store. A blob store that keeps every
// blob of at most `maxBytes` (as stored: ciphertext when encryption is on) in
// the metadata database and hands the rest to the blob store it wraps. A
// 4 KiB avatar then costs one group-committed database write instead of a
// file's open, write, fsync, rename and directory fsync (or an object-store
// round trip), and reading it back is one query. Everything above the blob
// store (the commit protocol, promotion, garbage, the orphan scan, key
// rotation) is unchanged: a blob is durable when `put` resolves, whichever
// side holds it.
//
// `put` reads up to `maxBytes + 1` bytes before it knows which side a blob
// belongs on, so an upload holds at most that much before its bytes go on.
import { checkByteRange } from './byte-range.js';
import { checkBlobPath } from './paths.js';
import { concatBytes, readUpTo, toReadableStream } from './streams.js';
import type { BlobInfo, BlobStore, EpochMillis, MetadataStore, MetadataTransactionOptions, MetadataTx } from './ports.js';

/** Most blob-data rows one listing transaction reads. */
const LIST_PAGE = 500;

type BlobDataTx = Required<Pick<MetadataTx, 'putBlobData' | 'getBlobData' | 'statBlobData' | 'deleteBlobData' | 'listBlobData'>>;

export interface InlineBlobOptions {
  /**
   * Blobs of at most this many stored bytes are written to the metadata
   * store. 0 writes none there but still reads the ones an earlier setting
   * wrote, so the setting can change at any time.
   */
  maxBytes: number;
  now: () => EpochMillis;
}

/** Marks a store made by `inlineSmallBlobs`, so the engine does not wrap it twice. */
const INLINE = Symbol('attache.inlineSmallBlobs');

export function isInlineBlobStore(blobs: BlobStore): boolean {
  return INLINE in blobs;
}

export function inlineSmallBlobs(blobs: BlobStore, metadata: MetadataStore, options: InlineBlobOptions): BlobStore {
  const { maxBytes, now } = options;
  // Where reads look first: where new small blobs go. With 0, only blobs an
  // earlier setting put inline are there, so they are looked for last.
  const inlineFirst = maxBytes > 0;
  // The table comes with the schema: make sure it is there even when the
  // blob store is used before the engine's first call (which migrates too).
  let migrated: Promise<void> | undefined;
  const ready = (): Promise<void> =>
    (migrated ??= metadata.migrate().catch((error: unknown) => {
      migrated = undefined;
      throw error;
    }));
  const inTx = async <T>(fn: (tx: BlobDataTx) => Promise<T>, options?: MetadataTransactionOptions): Promise<T> => {
    await ready();
    return metadata.transaction((tx) => fn(tx as BlobDataTx), options);
  };

  const store: BlobStore = {
    async put(path, body, putOptions = {}) {
      checkBlobPath(path);
      if (!inlineFirst) return blobs.put(path, body, putOptions);
      const reader = body.getReader();
      const { chunks, size, ended } = await readUpTo(reader, maxBytes, putOptions.signal);
      if (!ended) {
        // Too large: the wrapped store takes what was read, then the rest.
        const stored = await blobs.put(path, continued(chunks, reader), putOptions);
        // An earlier small blob at this path would shadow the new one.
        await inTx((tx) => tx.deleteBlobData(path));
        return stored;
      }
      const data = concatBytes(chunks, size);
      // When the caller's row follows, its durable commit makes this one durable too (one fsync, not two).
      await inTx((tx) => tx.putBlobData({ path, data, createdAt: now() }), { durable: putOptions.metadataWriteFollows !== true });
      return { size };
    },

    async get(path, range) {
      checkBlobPath(path);
      if (range !== undefined) checkByteRange(range);
      const inline = async () => {
        const row = await inTx((tx) => tx.getBlobData(path));
        return row && toReadableStream(range === undefined ? row.data : row.data.subarray(range.start, range.end + 1));
      };
      if (inlineFirst) return (await inline()) ?? blobs.get(path, range);
      return (await blobs.get(path, range)) ?? inline();
    },

    async stat(path) {
      checkBlobPath(path);
      const inline = () => inTx((tx) => tx.statBlobData(path));
      if (inlineFirst) return (await inline()) ?? blobs.stat(path);
      return (await blobs.stat(path)) ?? inline();
    },

    async copy(from, to) {
      checkBlobPath(from);
      checkBlobPath(to);
      const row = await inTx((tx) => tx.getBlobData(from));
      if (!row) return blobs.copy(from, to);
      await inTx((tx) => tx.putBlobData({ path: to, data: row.data, createdAt: now() }));
    },

    async delete(path) {
      checkBlobPath(path);
      await Promise.all([inTx((tx) => tx.deleteBlobData(path)), blobs.delete(path)]);
    },

    async *list(prefix) {
      let after: string | undefined;
      for (;;) {
        const page: BlobInfo[] = await inTx((tx) => tx.listBlobData(prefix, after, LIST_PAGE));
        yield* page;
        if (page.length < LIST_PAGE) break;
        after = page[page.length - 1]!.path;
      }
      yield* blobs.list(prefix);
    },

    close: () => blobs.close?.() ?? Promise.resolve(),
  };
  Object.defineProperty(store, INLINE, { value: true });
  if (blobs.purgeTemporary) store.purgeTemporary = (olderThan) => blobs.purgeTemporary!(olderThan);
  if (blobs.deleteGraceSeconds !== undefined) Object.assign(store, { deleteGraceSeconds: blobs.deleteGraceSeconds });
  return store;
}

/** The chunks already read, then the rest of `reader`'s stream. */
function continued(head: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = head.shift();
        if (next !== undefined) return controller.enqueue(next);
        const { done, value } = await reader.read();
        if (done) {
          reader.releaseLock();
          controller.close();
        } else controller.enqueue(value);
      },
      async cancel(reason) {
        head.length = 0;
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
