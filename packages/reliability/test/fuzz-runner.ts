// Runs generated steps against `createHandler({ store })` with Web Requests,
// checks every answer against the contract, feeds it to the model, and at
// the end of a run proves the store agrees with the model: public lists and
// bytes equal what was committed, and after a sweep no blob is unreferenced
// and no staged blob of an ended transaction remains.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { createAttachmentStore, createHandler, parseMediaType, stagedTxnOf, type AttachmentStore, type BlobStore, type MetadataStore } from '@attache/core';
import { HandlerModel, parseScopeId, scopeId, type ModelLease } from './fuzz-model.js';
import { interpret, type SentRequest } from './fuzz-interpret.js';
import {
  LEASE,
  OTHER_TXN,
  SCOPES,
  headerSafe,
  type BodySpec,
  type FlowStep,
  type FuzzRequest,
  type LeasePick,
  type MultipartSpec,
  type Step,
} from './fuzz-arbitraries.js';
import { contractViolations, observe, StatusTally, type ObservedResponse } from './http-contract.js';

const ORIGIN = 'http://fuzz.local';
/** A handler call that takes longer than this is a hang, whatever it answers later. */
const REQUEST_DEADLINE_MS = 10_000;
const encoder = new TextEncoder();

export interface FuzzWorld {
  store: AttachmentStore;
  metadata: MetadataStore;
  blobs: BlobStore;
  model: HandlerModel;
  handler: (request: Request) => Promise<Response>;
  /** Contract violations of single answers (5xx, error body shape, leaks). */
  violations: string[];
  /** The last request sent, for messages about its answer. */
  lastRequest: string;
}

export interface WorldPorts {
  metadata: MetadataStore;
  blobs: BlobStore;
}

export function createWorld(ports: WorldPorts, startMs: number): FuzzWorld {
  const model = new HandlerModel(startMs);
  // The test owns the clock (lease expiry is exact and reproducible) and the
  // sweeps; a grace of 0 lets one sweep remove every orphan.
  const store = createAttachmentStore({
    ...ports,
    now: () => model.clock,
    sweepIntervalSeconds: 0,
    orphanGraceSeconds: 0,
    maxBytes: 1024 * 1024,
  });
  return { store, ...ports, model, handler: createHandler({ store }), violations: [], lastRequest: '' };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function crc32Hex(data: Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}

// ── Sending ────────────────────────────────────────────────────────────────

async function send(world: FuzzWorld, tally: StatusTally, sent: SentRequest, streamChunk: number | null = null): Promise<ObservedResponse> {
  let request: Request;
  try {
    request = toRequest(sent, streamChunk);
  } catch (error) {
    // The generators only build requests a fetch client can send; this is a generator bug.
    throw new Error(`could not build ${sent.method} ${sent.url}: ${String(error)}`);
  }
  world.lastRequest = describeRequest(sent);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_DEADLINE_MS} ms: ${sent.method} ${sent.url}`)), REQUEST_DEADLINE_MS);
  });
  let answer: ObservedResponse;
  try {
    answer = await Promise.race([world.handler(request).then(observe), deadline]);
  } finally {
    clearTimeout(timer);
  }
  const route = new URL(sent.url).pathname;
  const isDownload = (sent.method === 'GET' || sent.method === 'HEAD') && /\/attachment\/?$/.test(route) && answer.status < 300;
  let code: string | undefined;
  if (answer.status >= 400) {
    try {
      code = (JSON.parse(new TextDecoder().decode(answer.body)) as { error?: string }).error;
    } catch {
      code = '(not json)';
    }
  }
  tally.record(answer.status, code);
  for (const violation of contractViolations(answer, { downloadBody: isDownload })) {
    world.violations.push(`${violation}\n    request: ${describeRequest(sent)}`);
  }
  if (isDownload) checkDownloadHeaders(world, sent, answer);
  interpret(world.model, sent, answer);
  return answer;
}

function toRequest(sent: SentRequest, streamChunk: number | null): Request {
  const init: RequestInit & { duplex?: 'half' } = { method: sent.method, headers: sent.headers };
  if (sent.body !== undefined) {
    init.body = streamChunk === null ? new Uint8Array(sent.body) : chunkedStream(sent.body, streamChunk);
    // Required by undici for stream bodies; missing from the DOM typings.
    init.duplex = 'half';
  }
  return new Request(sent.url, init);
}

function chunkedStream(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(offset, offset + size));
      offset += size;
    },
  });
}

function describeRequest(sent: SentRequest): string {
  const headers = [...sent.headers].map(([name, value]) => `${name}: ${value.slice(0, 80)}`).join(' | ');
  return `${sent.method} ${sent.url.slice(0, 300)} [${headers}] body ${sent.body?.byteLength ?? 'none'} bytes`;
}

/** Every successful download answer: nosniff, and an RFC 6266 disposition (absent only on 304). */
function checkDownloadHeaders(world: FuzzWorld, sent: SentRequest, answer: ObservedResponse): void {
  if (answer.headers.get('X-Content-Type-Options') !== 'nosniff') world.violations.push(`download without nosniff: ${describeRequest(sent)}`);
  if (answer.status === 304) return;
  const disposition = answer.headers.get('Content-Disposition') ?? '';
  if (!/^(?:attachment|inline); filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]+$/.test(disposition)) {
    world.violations.push(`download with Content-Disposition ${JSON.stringify(disposition)}: ${describeRequest(sent)}`);
  }
  const type = (answer.headers.get('Content-Type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (disposition.startsWith('inline') && (type === 'text/html' || type === 'image/svg+xml' || type.includes('xml') || type.includes('script'))) {
    world.violations.push(`active content ${type} served inline: ${describeRequest(sent)}`);
  }
}

// ── Steps ──────────────────────────────────────────────────────────────────

function pickLease(model: HandlerModel, pick: LeasePick): ModelLease | undefined {
  const pool = pick.live ? model.activeLeases() : [...model.leases.values()];
  const fallback = [...model.leases.values()];
  const list = pool.length > 0 ? pool : fallback;
  return list.length === 0 ? undefined : list[pick.index % list.length];
}

function leaseHeaderPairs(lease: ModelLease): Array<[string, string]> {
  return [
    ['X-Lease-ID', lease.leaseId],
    ['X-Txn-ID', lease.txnId],
    ['X-Fencing-Token', String(lease.fencingToken)],
  ];
}

function url(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.append(name, value);
  const search = params.toString();
  return `${ORIGIN}${path}${search === '' ? '' : `?${search}`}`;
}

function jsonRequest(path: string, body: unknown, extraHeaders: Array<[string, string]> = []): SentRequest {
  return {
    method: 'POST',
    url: `${ORIGIN}${path}`,
    headers: new Headers([['Content-Type', 'application/json'], ...extraHeaders]),
    body: encoder.encode(JSON.stringify(body)),
  };
}

/** A lease is live for the model: granted, not ended, not expired, its transaction not doomed. */
function isLive(model: HandlerModel, lease: ModelLease): boolean {
  return !lease.ended && lease.expiresAt > model.clock && model.txns.get(lease.txnId)?.state === 'active';
}

function keyIsFree(model: HandlerModel, namespace: string, key: string): boolean {
  return ![...model.leases.values()].some((lease) => !lease.ended && lease.expiresAt > model.clock && lease.namespace === namespace && lease.key === key);
}

function expectStatus(world: FuzzWorld, what: string, answer: ObservedResponse, expected: number, code?: string): void {
  const body = new TextDecoder().decode(answer.body);
  const gotCode = answer.status >= 400 ? (JSON.parse(body) as { error?: string }).error : undefined;
  if (answer.status !== expected || (code !== undefined && gotCode !== code)) {
    world.model.fail(`${what}: expected ${expected}${code ? ` ${code}` : ''}, got ${answer.status} ${body.slice(0, 200)}\n    request: ${world.lastRequest}`);
  }
}

export async function runStep(world: FuzzWorld, tally: StatusTally, step: Step): Promise<void> {
  if (step.kind === 'fuzz') return runFuzz(world, tally, step.request);
  return runFlow(world, tally, step);
}

async function runFlow(world: FuzzWorld, tally: StatusTally, step: FlowStep): Promise<void> {
  const { model } = world;
  switch (step.kind) {
    case 'advance':
      model.advance(step.seconds * 1000);
      return;
    case 'acquire': {
      const scope = SCOPES[step.scope]!;
      const join = step.joinTxnOf === null ? undefined : pickLease(model, step.joinTxnOf);
      const free = keyIsFree(model, scope.namespace, scope.key);
      const body: Record<string, unknown> = { ...scope, ttl_seconds: step.ttlSeconds, owner: 'fuzz-flow' };
      if (join) body.txn_id = join.txnId;
      // A blocking acquire is only tried on a free key: the test's clock stands still while a request waits.
      if (step.block && free) body.block_seconds = 5;
      const answer = await send(world, tally, jsonRequest('/v1/acquire', body));
      // (A 200 for a key held by a live transaction is caught by the model itself.)
      if (free && join === undefined) expectStatus(world, `acquire of free ${scope.key}`, answer, 200);
      return;
    }
    case 'upload': {
      const lease = pickLease(model, step.lease);
      if (lease === undefined) return;
      // A raw upload carries one name; a multipart one, one per part.
      const names = step.multipart ? [...new Set(step.names)] : step.names.slice(0, 1);
      const query: Record<string, string | undefined> = { namespace: lease.namespace, key: lease.key };
      const headers: Array<[string, string]> = leaseHeaderPairs(lease);
      if (step.preventOverwrite) query.prevent_overwrite = 'true';
      if (step.maxBytes !== null) query.max_bytes = String(step.maxBytes);
      let body: Uint8Array;
      if (step.multipart) {
        const boundary = 'fuzz-flow-boundary-7f3a';
        body = multipartBody(boundary, names.map((name) => ({ name, data: step.data })));
        headers.push(['Content-Type', `multipart/form-data; boundary=${boundary}`]);
      } else {
        query.name = names[0];
        body = step.data;
        if (step.contentType !== null) headers.push(['Content-Type', headerSafe(step.contentType)]);
        if (step.checksum === 'crc32') headers.push(['X-Attachment-CRC32', crc32Hex(step.data)]);
        if (step.checksum === 'sha256') headers.push(['Content-Digest', `sha-256=:${Buffer.from(sha256Hex(step.data), 'hex').toString('base64')}:`]);
        if (step.checksum === 'wrong') headers.push(['X-Attachment-CRC32', crc32Hex(step.data) === '00000000' ? '00000001' : '00000000']);
      }
      const sent: SentRequest = { method: 'POST', url: url('/v1/attachments', query), headers: new Headers(headers), body };
      const visibleBefore = model.visible(lease, lease.txnId);
      const live = isLive(model, lease);
      const answer = await send(world, tally, sent);
      if (!live) return;
      // A malformed Content-Type is refused with the query, before the engine runs.
      const typeRefused = !step.multipart && step.contentType !== null && headerSafe(step.contentType).trim() !== '' && parseMediaType(headerSafe(step.contentType)) === undefined;
      if (typeRefused) return expectStatus(world, 'upload with a malformed Content-Type', answer, 400, 'invalid_content_type');
      const existsAlready = step.preventOverwrite && names.every((name) => visibleBefore.has(name));
      if (existsAlready) return expectStatus(world, 'prevent_overwrite upload', answer, 200);
      if (step.maxBytes !== null && step.maxBytes > 0 && step.data.byteLength > step.maxBytes) {
        return expectStatus(world, 'upload over max_bytes', answer, 413, 'attachment_too_large');
      }
      if (!step.multipart && step.checksum === 'wrong') return expectStatus(world, 'upload with a wrong CRC-32', answer, 400, 'checksum_mismatch');
      if (answer.status !== 200 && answer.status !== 400) model.fail(`valid upload answered ${answer.status}`);
      return;
    }
    case 'delete': {
      const lease = pickLease(model, step.lease);
      if (lease === undefined) return;
      const scope = { namespace: lease.namespace, key: lease.key };
      let query: Record<string, string | undefined> = scope;
      if (step.target === 'name') query = { ...scope, name: step.name };
      if (step.target === 'id') {
        const existing = [...model.visible(scope, lease.txnId).values()][0];
        query = { ...scope, id: existing?.id ?? '0190a0b0-0000-7000-8000-000000000000' };
      }
      const path = step.target === 'all' ? '/v1/attachments' : '/v1/attachment';
      const live = isLive(model, lease);
      const answer = await send(world, tally, { method: 'DELETE', url: url(path, query), headers: new Headers(leaseHeaderPairs(lease)), body: undefined });
      if (live) expectStatus(world, `delete (${step.target}) with a live lease`, answer, 200);
      return;
    }
    case 'release': {
      const lease = pickLease(model, step.lease);
      if (lease === undefined) return;
      const live = isLive(model, lease);
      const body = { namespace: lease.namespace, key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId, rollback: step.rollback };
      const answer = await send(world, tally, jsonRequest('/v1/release', body, [['X-Fencing-Token', String(lease.fencingToken)]]));
      if (live) return expectStatus(world, `release (rollback ${step.rollback}) of a live lease`, answer, 200);
      if (!lease.ended) return;
      // Releasing again answers from how the transaction ended, never claiming what did not happen.
      const committed = model.txns.get(lease.txnId)?.outcome === 'committed';
      if (committed && step.rollback) return expectStatus(world, 'rollback of a committed transaction', answer, 409, 'txn_committed');
      if (committed || step.rollback) return expectStatus(world, `release (rollback ${step.rollback}) replayed as its transaction ended`, answer, 200);
      if (answer.status !== 403 && answer.status !== 409) model.fail(`commit of a rolled-back transaction answered ${answer.status}`);
      return;
    }
    case 'keepalive': {
      const lease = pickLease(model, step.lease);
      if (lease === undefined) return;
      const live = !lease.ended && lease.expiresAt > model.clock;
      const body = { namespace: lease.namespace, key: lease.key, lease_id: lease.leaseId, txn_id: lease.txnId, ttl_seconds: step.ttlSeconds };
      const answer = await send(world, tally, jsonRequest('/v1/keepalive', body, [['X-Fencing-Token', String(lease.fencingToken)]]));
      if (live && isLive(model, lease)) expectStatus(world, 'keepalive of a live lease', answer, 200);
      return;
    }
    case 'list': {
      const lease = step.viaLease === null ? undefined : pickLease(model, step.viaLease);
      const scope = lease ? { namespace: lease.namespace, key: lease.key } : SCOPES[step.scope]!;
      const answer = await send(world, tally, {
        method: 'GET',
        url: url('/v1/attachments', { ...scope }),
        headers: new Headers(lease ? leaseHeaderPairs(lease) : []),
        body: undefined,
      });
      if (lease === undefined || isLive(model, lease)) expectStatus(world, 'list', answer, 200);
      return;
    }
    case 'download': {
      const lease = step.viaLease === null ? undefined : pickLease(model, step.viaLease);
      const scope = lease ? { namespace: lease.namespace, key: lease.key } : SCOPES[step.scope]!;
      const visible = model.visible(scope, lease?.txnId);
      // Mostly ask for a name that exists, so ranges and revalidation are exercised on real bytes.
      const existing = [...visible.keys()];
      const name = existing.length > 0 && step.name.length % 3 !== 0 ? existing[step.name.length % existing.length]! : step.name;
      const headers: Array<[string, string]> = lease ? leaseHeaderPairs(lease) : [];
      if (step.range !== null) headers.push(['Range', step.range]);
      const entry = visible.get(name);
      if (step.revalidate && entry) headers.push(['If-None-Match', `"${entry.sha256}"`]);
      const answer = await send(world, tally, { method: step.method, url: url('/v1/attachment', { ...scope, name }), headers: new Headers(headers), body: undefined });
      if (lease !== undefined && !isLive(model, lease)) return;
      if (entry === undefined) return expectStatus(world, 'download of a missing name', answer, 404, 'attachment_not_found');
      if (step.revalidate) return expectStatus(world, 'download with a matching If-None-Match', answer, 304);
      if (![200, 206, 416].includes(answer.status)) model.fail(`download of an existing attachment answered ${answer.status}`);
      if (step.method === 'GET' && answer.status === 200 && sha256Hex(answer.body) !== entry.sha256) {
        model.fail(`download of ${JSON.stringify(name)} served bytes whose sha256 differs from the model's`);
      }
      return;
    }
    case 'document': {
      const names = [...new Set(step.names)];
      const headers: Array<[string, string]> = [];
      let body: Uint8Array = step.data;
      let query: Record<string, string | undefined> = { name: names[0] };
      if (step.multipart) {
        const boundary = 'fuzz-doc-boundary';
        body = multipartBody(boundary, names.map((name) => ({ name, data: step.data })));
        headers.push(['Content-Type', `multipart/form-data; boundary=${boundary}`]);
        query = {};
      }
      const answer = await send(world, tally, { method: 'POST', url: url('/v1/attachments', query), headers: new Headers(headers), body });
      expectStatus(world, 'document upload', answer, 200);
      return;
    }
  }
}

function multipartBody(boundary: string, parts: Array<{ name: string; data: Uint8Array }>): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const part of parts) {
    // filename* carries any unicode name exactly; the ASCII filename is a fallback.
    const disposition = `form-data; name="file"; filename="fallback.bin"; filename*=UTF-8''${encodeURIComponent(part.name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`;
    chunks.push(encoder.encode(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n`), part.data, encoder.encode('\r\n'));
  }
  chunks.push(encoder.encode(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

// ── Arbitrary requests ─────────────────────────────────────────────────────

function resolveSymbol(value: string, lease: ModelLease | undefined, other: ModelLease | undefined, field: 'key' | 'namespace' | 'lease' | 'txn'): string {
  if (value === LEASE) {
    if (lease === undefined) return 'no-lease';
    return field === 'key' ? lease.key : field === 'namespace' ? lease.namespace : field === 'txn' ? lease.txnId : lease.leaseId;
  }
  if (value === OTHER_TXN) return other?.txnId ?? 'no-txn';
  return value;
}

function resolveJson(value: Record<string, unknown>, lease: ModelLease | undefined, other: ModelLease | undefined): Record<string, unknown> {
  const fields: Record<string, 'key' | 'namespace' | 'lease' | 'txn'> = { key: 'key', namespace: 'namespace', lease_id: 'lease', txn_id: 'txn' };
  const resolved: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    resolved[name] = typeof field === 'string' ? resolveSymbol(field, lease, other, fields[name] ?? 'lease') : field;
  }
  return resolved;
}

function multipartFuzzBody(spec: MultipartSpec): { contentType: string; body: Uint8Array } {
  const contentType = {
    plain: `multipart/form-data; boundary=${spec.boundary}`,
    quoted: `multipart/form-data; boundary="${spec.boundary}"`,
    missing: 'multipart/form-data',
    upper: `MULTIPART/FORM-DATA; BOUNDARY=${spec.boundary}`,
    'extra-param': `multipart/form-data; charset=utf-8; boundary=${spec.boundary}; x=y`,
  }[spec.headerStyle];
  const chunks: Uint8Array[] = [encoder.encode(spec.preamble)];
  for (const part of spec.parts) {
    let disposition = `form-data; name="${part.fieldName}"`;
    if (part.filename !== null) disposition += `; filename="${part.filename}"`;
    if (part.filenameStar !== null) disposition += `; filename*=${part.filenameStar}`;
    let head = `--${spec.bodyBoundary}\r\nContent-Disposition: ${disposition}\r\n`;
    if (part.contentType !== null) head += `Content-Type: ${part.contentType}\r\n`;
    if (part.extraHeader !== null) head += `${part.extraHeader}\r\n`;
    chunks.push(encoder.encode(`${head}\r\n`), part.data, encoder.encode('\r\n'));
  }
  if (spec.close) chunks.push(encoder.encode(`--${spec.bodyBoundary}--\r\n`));
  const whole = Buffer.concat(chunks);
  return { contentType: headerSafe(contentType), body: whole.subarray(0, Math.floor(whole.byteLength * spec.keepFraction)) };
}

function fuzzBody(spec: BodySpec, lease: ModelLease | undefined, other: ModelLease | undefined): { body: Uint8Array | undefined; contentType: string | null } {
  switch (spec.kind) {
    case 'none':
      return { body: undefined, contentType: null };
    case 'bytes':
      return { body: spec.data, contentType: spec.contentType };
    case 'json':
      return { body: encoder.encode(JSON.stringify(resolveJson(spec.value, lease, other))), contentType: spec.contentType };
    case 'raw-json':
      return { body: encoder.encode(spec.text), contentType: spec.contentType };
    case 'multipart': {
      const { contentType, body } = multipartFuzzBody(spec.multipart);
      return { body, contentType };
    }
  }
}

async function runFuzz(world: FuzzWorld, tally: StatusTally, spec: FuzzRequest): Promise<void> {
  const { model } = world;
  const lease = spec.lease === null ? undefined : pickLease(model, spec.lease.pick);
  const others = [...model.leases.values()].filter((candidate) => candidate !== lease);
  const other = others[(spec.lease?.pick.index ?? 0) % Math.max(1, others.length)];

  const params = new URLSearchParams();
  for (const [name, value] of spec.query) {
    params.append(name, resolveSymbol(value, lease, other, name === 'namespace' ? 'namespace' : name === 'key' ? 'key' : 'lease'));
  }
  let search = params.toString();
  if (spec.rawQuery !== null) search = search === '' ? spec.rawQuery : `${search}&${spec.rawQuery}`;
  const target = `${ORIGIN}${spec.path}${search === '' ? '' : `?${search}`}`;

  const headers = new Headers();
  if (lease && spec.lease) {
    const perturb = spec.lease.perturb;
    headers.set('X-Lease-ID', perturb === 'lease' ? (other?.leaseId ?? 'not-a-lease') : lease.leaseId);
    if (perturb !== 'drop-txn') headers.set('X-Txn-ID', perturb === 'txn' ? (other?.txnId ?? 'not-a-txn') : lease.txnId);
    if (perturb !== 'drop-fencing') {
      const token = perturb === 'fencing' ? lease.fencingToken + 1 : perturb === 'negative-fencing' ? -lease.fencingToken : lease.fencingToken;
      headers.set('X-Fencing-Token', String(token));
    }
  }
  const method = new Request(ORIGIN, { method: spec.method }).method;
  const { body, contentType } = fuzzBody(spec.body, lease, other);
  if (contentType !== null) headers.set('Content-Type', contentType);
  for (const [name, value] of spec.headers) headers.set(name, value);
  // A fetch client cannot send a body with GET or HEAD.
  const sendsBody = method !== 'GET' && method !== 'HEAD' && body !== undefined;
  await send(world, tally, { method, url: target, headers, body: sendsBody ? body : undefined }, sendsBody ? spec.streamChunk : null);
}

// ── End of a run ───────────────────────────────────────────────────────────

/** Proves the store equals the model, then that a sweep leaves no stray blob, then that expiry rolls everything back. */
export async function verifyWorld(world: FuzzWorld, tally: StatusTally): Promise<void> {
  const { model } = world;
  await verifyCommitted(world, tally);

  await world.store.sweep();
  await verifyBlobs(world, 'after a sweep');

  // Every lease runs out; the sweeper must roll all of them back without touching committed state.
  model.advance(8 * 24 * 3600 * 1000);
  for (const txn of model.txns.values()) if (txn.state !== 'ended') txn.state = 'ended';
  await world.store.sweep();
  await verifyBlobs(world, 'after every lease expired and a sweep');
  const staged = await countBlobs(world.blobs, (path) => stagedTxnOf(path) !== undefined);
  if (staged !== 0) model.fail(`${staged} staged blobs remain after every transaction ended and a sweep`);
  await verifyCommitted(world, tally);
}

async function verifyCommitted(world: FuzzWorld, tally: StatusTally): Promise<void> {
  const { model } = world;
  const scopes = new Set([...model.touched, ...model.committed.keys(), ...SCOPES.map((scope) => scopeId(scope))]);
  for (const id of scopes) {
    const scope = parseScopeId(id);
    const committed = model.committed.get(id) ?? new Map();
    const answer = await send(world, tally, { method: 'GET', url: url('/v1/attachments', { ...scope, public: 'true' }), headers: new Headers(), body: undefined });
    if (answer.status !== 200) {
      // Only a key the server refuses as a name may fail to list, and nothing can have been committed there.
      if (answer.status !== 400 || committed.size > 0) model.fail(`final list of ${scope.namespace}/${scope.key} answered ${answer.status}`);
      continue;
    }
    for (const [name, entry] of committed) {
      const download = await send(world, tally, { method: 'GET', url: url('/v1/attachment', { ...scope, name, public: 'true' }), headers: new Headers(), body: undefined });
      if (download.status !== 200 || sha256Hex(download.body) !== entry.sha256 || download.body.byteLength !== entry.size) {
        model.fail(`final download of ${scope.key}/${JSON.stringify(name)}: ${download.status}, ${download.body.byteLength} bytes`);
      }
      const byId = await send(world, tally, { method: 'GET', url: url('/v1/attachment', { id: entry.id }), headers: new Headers(), body: undefined });
      if (byId.status !== 200 || sha256Hex(byId.body) !== entry.sha256) model.fail(`final download of id ${entry.id}: ${byId.status}`);
    }
  }
}

async function countBlobs(blobs: BlobStore, predicate: (path: string) => boolean): Promise<number> {
  let count = 0;
  for await (const blob of blobs.list('state/')) if (predicate(blob.path)) count += 1;
  return count;
}

/** After a sweep: every blob is referenced by a row, staged blobs belong to live transactions, one blob per committed version. */
async function verifyBlobs(world: FuzzWorld, when: string): Promise<void> {
  const { model } = world;
  const paths: string[] = [];
  for await (const blob of world.blobs.list('state/')) paths.push(blob.path);
  const referenced = await world.metadata.transaction((tx) => tx.referencedBlobPaths(paths));
  // A lone part's blob is written at its committed path while its row is
  // still staged: such blobs belong to a live transaction, not to the committed state.
  const stagedAtCommittedPath = await world.metadata.transaction(async (tx) => {
    const found = new Set<string>();
    for (const txnId of model.txns.keys()) {
      if ((await tx.getTxn(txnId))?.state !== 'active') continue;
      for (const row of await tx.listStagedOfTxn(txnId)) if (row.state === 'staged' && stagedTxnOf(row.blobPath) === undefined) found.add(row.blobPath);
    }
    return found;
  });
  let committedBlobs = 0;
  for (const path of paths) {
    if (!referenced.has(path)) model.fail(`${when}: blob ${path} is not referenced by any row`);
    const txnId = stagedTxnOf(path);
    if (txnId === undefined) {
      if (!stagedAtCommittedPath.has(path)) committedBlobs += 1;
      continue;
    }
    const txn = await world.metadata.transaction((tx) => tx.getTxn(txnId));
    if (txn?.state !== 'active') model.fail(`${when}: staged blob ${path} of a ${txn?.state ?? 'forgotten'} transaction`);
    const modelTxn = model.txns.get(txnId);
    if (modelTxn !== undefined && modelTxn.state !== 'active') model.fail(`${when}: staged blob of transaction ${txnId}, which the model has ${modelTxn.state}`);
  }
  const committedEntries = [...model.committed.values()].reduce((total, names) => total + names.size, 0);
  if (committedBlobs !== committedEntries) model.fail(`${when}: ${committedBlobs} committed blobs for ${committedEntries} committed attachments`);
}
