/// <reference path="./s3rver.d.ts" />
// Real S3-compatible servers for tests, started in-process from npm packages
// (no network, no Docker): s3rver (default) and fauxqs. Shared by the s3
// package's tests and the CLI's process tests, so both speak to one harness.
//
// s3rver 3.7 answers three operations we rely on with NotImplemented or 405:
// ListMultipartUploads, AbortMultipartUpload and UploadPartCopy. The helper
// adds them over s3rver's own on-disk store (see `multipartExtensions`), so
// the AWS SDK speaks real HTTP to a real server for every call; but those
// three are our reading of the S3 spec, not an independent implementation.
// It also stops s3rver from overwriting an object file in place under a GET
// that is streaming it, and from interleaving two PUTs of one key (see
// `replaceObjectsBesideReaders`).
import { readdir, readFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface S3Server {
  /** Which server this is ("s3rver", "fauxqs", or "radosgw" from `describeRadosgw`). */
  name: S3ServerKind | 'radosgw';
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Operations this server answers; tests that need others are skipped on it. */
  supports: { listMultipartUploads: boolean; uploadPartCopy: boolean; listPagination: boolean };
  stop(): Promise<void>;
}

export type S3ServerKind = 's3rver' | 'fauxqs';

export async function startS3Server(kind: S3ServerKind = 's3rver'): Promise<S3Server> {
  return kind === 's3rver' ? startS3rver() : startFauxqs();
}

async function startS3rver(): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'attache-s3rver-'));
  const bucket = 'attache-test';
  // Loaded on demand: every test file imports this package, few need a server.
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
  replaceObjectsBesideReaders(server.store as S3rverStore);
  // Before s3rver's router (the last middleware), after its XML encoder.
  server.middleware.splice(server.middleware.length - 1, 0, multipartExtensions(directory));
  const { port } = await server.run();
  return {
    name: 's3rver',
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: 'us-east-1',
    // s3rver's built-in account.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // s3rver 3.7 encrypts ListObjectsV2 continuation tokens with DES, which
    // OpenSSL 3 (Node ≥ 17) refuses: a truncated listing answers 500.
    supports: { listMultipartUploads: true, uploadPartCopy: true, listPagination: false },
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function startFauxqs(): Promise<S3Server> {
  // fauxqs ≥ 2 imports node:sqlite (Node ≥ 22.5); 1.9.2 runs on Node 20.
  const { startFauxqs: start } = await import('fauxqs');
  const server = await start({ port: 0, logger: false, host: '127.0.0.1' });
  const bucket = 'attache-test';
  server.createBucket(bucket);
  return {
    name: 'fauxqs',
    endpoint: `http://127.0.0.1:${server.port}`,
    bucket,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // fauxqs 1.9.2 routes UploadPartCopy to UploadPart (storing an empty part) and has no ListMultipartUploads.
    supports: { listMultipartUploads: false, uploadPartCopy: false, listPagination: true },
    stop: () => server.stop(),
  };
}

/** The part of a Koa context the extensions touch. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  store: S3rverStore;
}

/** s3rver's FilesystemStore, as far as the extensions use it. */
interface S3rverStore {
  getObject(bucket: string, key: string, range: { start: number; end: number }): Promise<{
    content: Readable | null;
    metadata: Record<string, string>;
  } | null>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: Readable): Promise<{ md5: string }>;
  putObject(object: { bucket: string; key: string }): Promise<unknown>;
  getResourcePath(bucket: string, key: string, resource: string): string;
}

/**
 * s3rver rewrites an object's file in place, truncating it under a GET that is
 * still streaming it (the reader gets a short body and a reset). S3 serves a
 * GET from the version it started with. Unlinking the file first gives the new
 * bytes a new inode, so open readers keep the old one.
 */
function replaceObjectsBesideReaders(store: S3rverStore): void {
  const putObject = store.putObject.bind(store);
  // s3rver also lets two PUTs of one key write into the same file at once
  // (interleaved bytes); S3 makes one of them win whole. One at a time per
  // key gives the same outcome.
  const writing = new Map<string, Promise<unknown>>();
  store.putObject = (object) => {
    const file = store.getResourcePath(object.bucket, object.key, 'object');
    const previous = writing.get(file) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        await rm(file, { force: true });
        return putObject(object);
      });
    writing.set(file, next);
    const forget = () => {
      if (writing.get(file) === next) writing.delete(file);
    };
    next.then(forget, forget);
    return next;
  };
}

/**
 * ListMultipartUploads, AbortMultipartUpload and UploadPartCopy on top of
 * s3rver's store, which keeps an upload in `<bucket>/._S3rver_uploads/<id>/`
 * (a `key` file and one file per part) until CompleteMultipartUpload.
 */
function multipartExtensions(directory: string) {
  const uploadsDirectory = (bucket: string) => join(directory, bucket, '._S3rver_uploads');
  const fail = (ctx: KoaContext, status: number, code: string, message: string) => {
    ctx.status = status;
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  };
  const header = (ctx: KoaContext, name: string) => {
    const value = ctx.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };

  return async (context: unknown, next: () => Promise<unknown>) => {
    const ctx = context as KoaContext; // Koa's context; s3rver adds `store`
    const [bucketSegment = '', ...keySegments] = ctx.path.slice(1).split('/');
    const bucket = decodeURIComponent(bucketSegment);
    const key = keySegments.map(decodeURIComponent).join('/');
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;

    if (ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const ids = await readdir(uploadsDirectory(bucket)).catch(() => [] as string[]);
      const uploads = [];
      for (const id of ids) {
        const uploadKey = await readFile(join(uploadsDirectory(bucket), id, 'key'), 'utf8').catch(() => undefined);
        if (uploadKey !== undefined && uploadKey.startsWith(prefix)) uploads.push({ Key: uploadKey, UploadId: id });
      }
      ctx.body = { ListMultipartUploadsResult: { Bucket: bucket, Prefix: prefix, IsTruncated: false, Upload: uploads } };
      return;
    }

    if (ctx.method === 'DELETE' && key !== '' && uploadId !== undefined) {
      const uploadDirectory = join(uploadsDirectory(bucket), uploadId);
      const exists = await readFile(join(uploadDirectory, 'key'), 'utf8').then(() => true, () => false);
      if (!exists) return fail(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      await rm(uploadDirectory, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = '';
      return;
    }

    const copySourceHeader = header(ctx, 'x-amz-copy-source');
    if (ctx.method === 'PUT' && uploadId !== undefined && copySourceHeader !== undefined) {
      const [sourceBucket = '', ...sourceKey] = copySourceHeader.replace(/^\//, '').split('/');
      const range = /^bytes=(\d+)-(\d+)$/.exec(header(ctx, 'x-amz-copy-source-range') ?? '');
      if (range === null) return fail(ctx, 400, 'InvalidArgument', 'x-amz-copy-source-range is required here');
      const source = await ctx.store.getObject(
        decodeURIComponent(sourceBucket),
        sourceKey.map(decodeURIComponent).join('/'),
        { start: Number(range[1]), end: Number(range[2]) },
      );
      if (source === null || source.content === null) {
        return fail(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
      }
      const ifMatch = header(ctx, 'x-amz-copy-source-if-match');
      if (ifMatch !== undefined && ifMatch !== source.metadata.etag) {
        source.content.destroy();
        return fail(ctx, 412, 'PreconditionFailed', 'At least one of the preconditions you specified did not hold.');
      }
      const { md5 } = await ctx.store.putPart(bucket, uploadId, Number(ctx.query.partNumber), source.content);
      ctx.body = { CopyPartResult: { ETag: JSON.stringify(md5), LastModified: new Date().toISOString() } };
      return;
    }

    return next();
  };
}
