// What the HTTP contract suite needs around an adapter: the store it builds
// (memory ports, a clock the tests move, storage that can be watched and
// taken down), the adapter's mount, and small request helpers.
import {
  AttacheError,
  createAttachmentStore,
  encryptedSize,
  ERROR_STATUS,
  memoryBlobs,
  memoryMetadata,
  type AttachmentStore,
  type AuthorizeHook,
  type BlobStore,
  type EncryptionOptions,
  type ErrorCode,
  type MetadataStore,
  type AttachmentJson,
  type LeaseJson,
  STAGING_PREFIX,
  stagedTxnOf,
} from '@attache/core';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export interface MountOptions {
  store: AttachmentStore;
  authorize?: AuthorizeHook;
  token?: string;
}

export interface MountedAttache {
  /** Where the routes answer, e.g. `http://127.0.0.1:41234/v1` (no trailing slash). */
  baseUrl: string;
  /** Stops listening and drops open connections; the suite closes the store itself. */
  close(): Promise<void>;
}

/** Mounts attache's routes for `store` at `/v1` on 127.0.0.1 (any free port). */
export type MountFn = (options: MountOptions) => Promise<MountedAttache>;

/**
 * The storage under a contract server; memory ports unless the suite is given
 * others (e.g. PostgreSQL + S3). Called once per server the suite starts; the
 * server closes the store, and with it the ports. `encryption`, when given,
 * turns on encryption at rest for the store over them.
 */
export type ContractPorts = () => Promise<{ metadata: MetadataStore; blobs: BlobStore; encryption?: EncryptionOptions }>;

const memoryPorts: ContractPorts = async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs() });

export interface ServerOptions {
  authorize?: AuthorizeHook;
  token?: string;
  /** The store's own limit (`AttachmentStoreOptions.maxBytes`). */
  maxBytes?: number;
}

/** Blob store that lets a test see what the engine streams into it. */
export interface WatchedBlobs extends BlobStore {
  /** Bytes the engine has pulled through `put`, over the store's lifetime. */
  readonly bytesPut: number;
  /** `put` calls that have not settled yet. */
  readonly putsInFlight: number;
  /** Every blob path under `prefix`, sorted. */
  paths(prefix?: string): Promise<string[]>;
  /** The blobs of a lease's key and the staged blobs of its transaction, sorted. */
  ofLease(lease: LeaseJson): Promise<string[]>;
}

export interface ContractServer {
  baseUrl: string;
  store: AttachmentStore;
  blobs: WatchedBlobs;
  /**
   * Waits until the server's background work (promotion and garbage deletion
   * after a commit) is done: `store.settled()` in process; for a server in
   * another process, until two listings of its blobs a moment apart agree.
   */
  settled(): Promise<void>;
  /** Moves the store's clock forward, so leases expire without waiting. */
  advance(seconds: number): void;
  /** While true, every metadata transaction fails as an unreachable database would. */
  outage: boolean;
  http: AttacheHttp;
  /** Bytes the blob store holds for an attachment of `size` bytes (more when encrypted at rest). */
  storedSize(size: number): number;
  close(): Promise<void>;
}

export async function startContractServer(
  mount: MountFn,
  options: ServerOptions = {},
  ports: ContractPorts = memoryPorts,
): Promise<ContractServer> {
  let offsetMs = 0;
  const storage = await ports();
  const blobs = watchBlobs(storage.blobs);
  const control = { outage: false };
  const store = createAttachmentStore({
    metadata: failingWhen(storage.metadata, () => control.outage),
    blobs,
    sweepIntervalSeconds: 0,
    now: () => Date.now() + offsetMs,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    ...(storage.encryption === undefined ? {} : { encryption: storage.encryption }),
  });
  const mountOptions: MountOptions = { store };
  if (options.authorize) mountOptions.authorize = options.authorize;
  if (options.token !== undefined) mountOptions.token = options.token;
  const mounted = await mount(mountOptions);
  const baseUrl = mounted.baseUrl.replace(/\/+$/, '');
  return {
    baseUrl,
    store,
    blobs,
    settled: () => store.settled(),
    advance: (seconds) => {
      offsetMs += seconds * 1000;
    },
    get outage() {
      return control.outage;
    },
    set outage(value: boolean) {
      control.outage = value;
    },
    http: new AttacheHttp(baseUrl),
    storedSize: (size) => (storage.encryption === undefined ? size : encryptedSize(size, storage.encryption.activeKeyId)),
    close: async () => {
      await mounted.close();
      await store.close();
    },
  };
}

/** Waits (bounded, 10 s) until two listings of `state/` 200 ms apart agree: another process's background work is done. */
/**
 * Until the blob listing has stayed the same for three looks 250 ms apart
 * (a loaded machine may take a moment to start a queued promotion), for at
 * most 15 s.
 */
async function blobsAtRest(blobs: WatchedBlobs): Promise<void> {
  let previous = JSON.stringify(await blobs.paths('state/'));
  let unchanged = 0;
  for (let round = 0; round < 60 && unchanged < 2; round++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const current = JSON.stringify(await blobs.paths('state/'));
    unchanged = current === previous ? unchanged + 1 : 0;
    previous = current;
  }
}

/** A server in another process, for `describeExternalHttpContract`. */
export interface ExternalServer {
  /** Where its routes answer, e.g. `http://127.0.0.1:41234/v1`. */
  baseUrl: string;
  /**
   * The store it serves, opened in this process too (e.g. the same SQLite
   * file and blob directory); none where the metadata lives inside the
   * server's runtime (describe it with `storeInProcess: false`).
   */
  store?: AttachmentStore;
  /** The blob store under `store`, to list what the server keeps. */
  blobs: BlobStore;
  /**
   * The directory where its blob store writes in flight grow, one file each
   * (fsBlobs: `<root>/.tmp`): how the suite sees an upload under way. None
   * for S3 (describe the server with `writesInFlight: false`).
   */
  stagingDir?: string;
  /** Stops the server and closes `store`. */
  close(): Promise<void>;
}

export async function connectExternalServer(external: ExternalServer): Promise<ContractServer> {
  const baseUrl = external.baseUrl.replace(/\/+$/, '');
  const notInProcess = (what: string) => new Error(`${what} needs the store in this process, not in the server's`);
  const blobs = stagedBlobs(external.blobs, external.stagingDir);
  return {
    baseUrl,
    get store(): AttachmentStore {
      if (external.store === undefined) throw notInProcess('the TypeScript store');
      return external.store;
    },
    blobs,
    settled: () => blobsAtRest(blobs),
    advance() {
      throw notInProcess('moving the clock');
    },
    get outage() {
      return false;
    },
    set outage(_value: boolean) {
      throw notInProcess('an outage');
    },
    http: new AttacheHttp(baseUrl),
    storedSize: (size) => size,
    close: () => external.close(),
  };
}

/**
 * What the suite can see of another process's blob store: its blobs, and its
 * writes in flight as the files growing in `stagingDir`. `bytesPut` counts
 * only the bytes of writes under way (`ContractSupport.blobTraffic` is false).
 */
function stagedBlobs(inner: BlobStore, stagingDir: string | undefined): WatchedBlobs {
  const inFlight = (): string[] => {
    if (stagingDir === undefined) return [];
    try {
      return readdirSync(stagingDir).map((name) => join(stagingDir, name));
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return [];
      throw error;
    }
  };
  const sizeOf = (file: string): number => statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  return {
    get bytesPut() {
      return inFlight().reduce((total, file) => total + sizeOf(file), 0);
    },
    get putsInFlight() {
      return inFlight().length;
    },
    put: (path, body, options) => inner.put(path, body, options),
    ...readThrough(inner),
  };
}

/** What both blob watchers pass straight to the store, plus `paths()`: the sorted blob paths under a prefix. */
function readThrough(inner: BlobStore): Pick<WatchedBlobs, 'get' | 'stat' | 'copy' | 'delete' | 'list' | 'paths' | 'ofLease'> {
  const paths = async (prefix = 'state/') => {
    const found: string[] = [];
    for await (const blob of inner.list(prefix)) found.push(blob.path);
    return found.sort();
  };
  return {
    get: (path, range) => inner.get(path, range),
    stat: (path) => inner.stat(path),
    copy: (from, to) => inner.copy(from, to),
    delete: (path) => inner.delete(path),
    list: (prefix) => inner.list(prefix),
    paths,
    async ofLease(lease) {
      const staged = (await paths(STAGING_PREFIX)).filter((path) => stagedTxnOf(path) === lease.txn_id);
      return [...(await paths(`state/${lease.namespace}/${lease.key}/`)), ...staged].sort();
    },
  };
}

function watchBlobs(inner: BlobStore): WatchedBlobs {
  let bytesPut = 0;
  let putsInFlight = 0;
  const watched: WatchedBlobs = {
    get bytesPut() {
      return bytesPut;
    },
    get putsInFlight() {
      return putsInFlight;
    },
    async put(path, body, options) {
      putsInFlight += 1;
      const counted = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            bytesPut += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
      );
      try {
        return await inner.put(path, counted, options);
      } finally {
        putsInFlight -= 1;
      }
    },
    ...readThrough(inner),
  };
  if (inner.close) watched.close = () => inner.close!();
  return watched;
}

/** A metadata store that answers `unavailable` while `down()` is true (a database outage). */
function failingWhen(inner: MetadataStore, down: () => boolean): MetadataStore {
  return {
    transaction: (fn, options) =>
      down()
        ? Promise.reject(new AttacheError('unavailable', 'metadata store unreachable', { retryAfterSeconds: 2 }))
        : inner.transaction(fn, options),
    migrate: () => inner.migrate(),
    close: () => inner.close(),
  };
}

export type { AttachmentJson, LeaseJson };

export type Query = Record<string, string | undefined>;

/** The requests every scenario makes, against one mounted server. */
export class AttacheHttp {
  constructor(readonly baseUrl: string) {}

  url(path: string, query: Query = {}): string {
    const search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const text = search.toString();
    return `${this.baseUrl}${path}${text ? `?${text}` : ''}`;
  }

  get(path: string, query: Query = {}, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url(path, query), init);
  }

  postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(this.url(path), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  async acquire(key: string, extra: Record<string, unknown> = {}): Promise<LeaseJson> {
    const response = await this.postJson('/acquire', { key, owner: 'tester', ttl_seconds: 60, ...extra });
    expect(response.status, `acquire ${key}`).toBe(200);
    return (await response.json()) as LeaseJson;
  }

  release(lease: LeaseJson, rollback = false): Promise<Response> {
    return this.postJson(
      '/release',
      { key: lease.key, namespace: lease.namespace, lease_id: lease.lease_id, txn_id: lease.txn_id, rollback },
      { 'X-Fencing-Token': String(lease.fencing_token) },
    );
  }

  keepalive(lease: LeaseJson, ttlSeconds: number): Promise<Response> {
    return this.postJson(
      '/keepalive',
      { key: lease.key, namespace: lease.namespace, lease_id: lease.lease_id, txn_id: lease.txn_id, ttl_seconds: ttlSeconds },
      { 'X-Fencing-Token': String(lease.fencing_token) },
    );
  }

  uploadRaw(
    lease: LeaseJson,
    name: string,
    body: string | Uint8Array<ArrayBuffer>,
    query: Query = {},
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return fetch(this.url('/attachments', { key: lease.key, namespace: lease.namespace, name, ...query }), {
      method: 'POST',
      headers: { ...leaseHeaders(lease), ...headers },
      body,
    });
  }

  /** Names visible to the lease (committed overlaid by its staged writes). */
  async namesUnderLease(lease: LeaseJson): Promise<string[]> {
    const response = await this.get('/attachments', { key: lease.key, namespace: lease.namespace }, { headers: leaseHeaders(lease) });
    expect(response.status).toBe(200);
    return ((await response.json()) as { attachments: AttachmentJson[] }).attachments.map((a) => a.name);
  }

  /** Committed attachments of a key, as everyone sees them. */
  async committed(key: string, namespace?: string): Promise<AttachmentJson[]> {
    const response = await this.get('/attachments', { key, namespace });
    expect(response.status).toBe(200);
    return ((await response.json()) as { attachments: AttachmentJson[] }).attachments;
  }
}

export function leaseHeaders(lease: LeaseJson): Record<string, string> {
  return { 'X-Lease-ID': lease.lease_id, 'X-Txn-ID': lease.txn_id, 'X-Fencing-Token': String(lease.fencing_token) };
}

/** Checks an API.md §3 error answer: status from the code table, JSON body with a human detail. */
export async function expectError(response: Response, code: ErrorCode): Promise<Record<string, unknown>> {
  const body = (await response.json()) as Record<string, unknown>;
  expect({ status: response.status, error: body.error }).toEqual({ status: ERROR_STATUS[code], error: code });
  expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8');
  expect(typeof body.detail).toBe('string');
  return body;
}

let keyCounter = 0;
/** A key no other scenario uses, so scenarios sharing one server never meet. */
export function freshKey(prefix = 'doc'): string {
  keyCounter += 1;
  return `${prefix}/k${keyCounter}`;
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
