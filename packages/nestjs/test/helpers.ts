// Shared by the tests: a Nest app on 127.0.0.1 (any free port), a memory
// store whose blobs can be watched, and the HTTP calls of a lease lifecycle.
import { createAttachmentStore, memoryBlobs, memoryMetadata, type AttachmentStore, type BlobStore } from '@attache/core';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { expect } from 'vitest';
import { watchedBlobs, type WatchedBlobs } from '@attache/testing';

export interface RunningApp {
  app: INestApplication;
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  origin: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Nest's own option; default true, as in `NestFactory.create(AppModule)`. */
  bodyParser?: boolean;
  globalPrefix?: string;
}

export async function startApp(rootModule: Type<unknown>, options: StartOptions = {}): Promise<RunningApp> {
  const app = await NestFactory.create(rootModule, {
    logger: ['error', 'warn'],
    ...(options.bodyParser === undefined ? {} : { bodyParser: options.bodyParser }),
  });
  if (options.globalPrefix !== undefined) app.setGlobalPrefix(options.globalPrefix);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return { app, origin: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

export type { WatchedBlobs };

export function watchedMemoryBlobs(): WatchedBlobs {
  return watchedBlobs(memoryBlobs());
}

export function memoryStore(blobs: BlobStore = watchedMemoryBlobs()): AttachmentStore {
  return createAttachmentStore({ metadata: memoryMetadata(), blobs, sweepIntervalSeconds: 0 });
}

export interface LeaseJson {
  lease_id: string;
  txn_id: string;
  key: string;
  namespace: string;
  fencing_token: number;
}

export async function acquire(baseUrl: string, key: string): Promise<LeaseJson> {
  const response = await fetch(`${baseUrl}/acquire`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key, ttl_seconds: 60, owner: 'nest-test' }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as LeaseJson;
}

export function leaseHeaders(lease: LeaseJson): Record<string, string> {
  return { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
}

export async function release(baseUrl: string, lease: LeaseJson, rollback = false): Promise<Response> {
  return fetch(`${baseUrl}/release`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...leaseHeaders(lease) },
    body: JSON.stringify({ key: lease.key, lease_id: lease.lease_id, txn_id: lease.txn_id, rollback }),
  });
}

/** A multipart/form-data body with text fields and files, as a browser form sends it. */
export function multipartBody(
  boundary: string,
  parts: ({ field: string; value: string } | { field: string; filename: string; contentType: string; bytes: Uint8Array })[],
): Uint8Array<ArrayBuffer> {
  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    const disposition =
      'filename' in part
        ? `form-data; name="${part.field}"; filename="${part.filename}"\r\nContent-Type: ${part.contentType}`
        : `form-data; name="${part.field}"`;
    chunks.push(encoder.encode(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push('bytes' in part ? part.bytes : encoder.encode(part.value));
    chunks.push(encoder.encode('\r\n'));
  }
  chunks.push(encoder.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
