// fast-check generators for the handler fuzzer: valid lease flows (acquire,
// upload, delete, list, download, keepalive, release, clock jumps) and
// arbitrary requests (methods, paths, query strings, headers, JSON and
// multipart bodies, ranges, unicode and traversal in names and keys).
// Values that depend on state (a live lease's ids) are symbolic here
// (`LEASE`, `OTHER_TXN`) and resolved when the step runs.
import fc from 'fast-check';

export const LEASE = '\u0001lease';
export const OTHER_TXN = '\u0001other-txn';

/** A small pool of keys so that flows contend and interleave. */
export const SCOPES = [
  { namespace: 'default', key: 'k1' },
  { namespace: 'default', key: 'k2' },
  { namespace: 'default', key: 'docs/report' },
  { namespace: 'ns-b', key: 'k1' },
  { namespace: 'tenant.a', key: 'a/b/c' },
] as const;

export const NAME_POOL = ['a.txt', 'b.bin', 'photo.png', 'Ünïcødé ✓ 文件.txt', 'x', 'page.html', 'with "quotes" %41.txt'] as const;

/** Inputs that have broken path handling somewhere before: traversal, separators, encodings, controls. */
export const HOSTILE_STRINGS = [
  '',
  '.',
  '..',
  '../..',
  '../etc/passwd',
  '..\\..\\windows',
  'a/../../b',
  '/abs',
  'a//b',
  'a/',
  '%2e%2e',
  '%2e%2e%2f',
  '..%2f',
  '%00',
  'nul\u0000byte',
  'line\nbreak',
  'cr\rreturn',
  'tab\tchar',
  'del\u007f',
  'c1\u0085',
  'rtl\u202etxt.exe',
  'zero\u200bwidth',
  'lone\ud800surrogate',
  '\ufeffbom',
  '.staging',
  'a/.staging/b',
  'CON',
  'aux.txt',
  ' ',
  '~',
  '__proto__',
  'constructor',
  'x'.repeat(129),
  'y'.repeat(256),
  'é'.repeat(255),
  '😀'.repeat(256),
  'A',
  'UPPER/case',
] as const;

const utf8 = new TextEncoder();

/** A header value as Node would hand it over: UTF-8 bytes read as Latin-1, without CR, LF or NUL. */
export function headerSafe(text: string): string {
  const latin1 = Array.from(utf8.encode(text), (byte) => String.fromCharCode(byte)).join('');
  return latin1.replace(/[\r\n\0]/g, '');
}

const randomText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 300 }) },
);

/** Any string a client might put where a name, key or namespace goes. */
export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom(...NAME_POOL, ...SCOPES.map((scope) => scope.key), ...SCOPES.map((scope) => scope.namespace)) },
  { weight: 3, arbitrary: randomText },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,12}(?:\/[a-z0-9._-]{1,12}){0,3}$/) },
);

/** Valid attachment names (API.md §2), unicode included. */
export const validName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NAME_POOL) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
      .filter((name) => name !== '.' && name !== '..' && !/[/\\\u0000-\u001f\u007f-\u009f]/.test(name)),
  },
);

export const smallBytes = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 70_000 }).map((size) => new Uint8Array(size).fill(0x61)) },
);

// ── Valid flows ─────────────────────────────────────────────────────────────

export interface LeasePick {
  /** Prefer a live lease (true) or any lease ever granted, ended ones included (false). */
  live: boolean;
  index: number;
}

/** `true` with probability trueWeight / (trueWeight + falseWeight); deterministic under fast-check's seed. */
function weightedBoolean(trueWeight: number, falseWeight: number): fc.Arbitrary<boolean> {
  return fc.oneof({ weight: trueWeight, arbitrary: fc.constant(true) }, { weight: falseWeight, arbitrary: fc.constant(false) });
}

const leasePick: fc.Arbitrary<LeasePick> = fc.record({ live: weightedBoolean(4, 1), index: fc.nat() });

export type FlowStep =
  | { kind: 'acquire'; scope: number; ttlSeconds: number; joinTxnOf: LeasePick | null; block: boolean }
  | {
      kind: 'upload';
      lease: LeasePick;
      names: string[];
      data: Uint8Array;
      multipart: boolean;
      preventOverwrite: boolean;
      maxBytes: number | null;
      checksum: 'none' | 'crc32' | 'sha256' | 'wrong';
      contentType: string | null;
    }
  | { kind: 'delete'; lease: LeasePick; target: 'name' | 'id' | 'all'; name: string }
  | { kind: 'release'; lease: LeasePick; rollback: boolean }
  | { kind: 'keepalive'; lease: LeasePick; ttlSeconds: number }
  | { kind: 'list'; scope: number; viaLease: LeasePick | null }
  | { kind: 'download'; scope: number; name: string; viaLease: LeasePick | null; range: string | null; method: 'GET' | 'HEAD'; revalidate: boolean }
  | { kind: 'document'; names: string[]; data: Uint8Array; multipart: boolean }
  | { kind: 'advance'; seconds: number };

const scopeIndex = fc.nat({ max: SCOPES.length - 1 });
const ttl = fc.oneof(fc.constantFrom(1, 5, 30, 60, 600), fc.double({ min: 0.5, max: 120, noNaN: true }));

export const rangeHeader = fc.oneof(
  fc.constantFrom(
    'bytes=0-0',
    'bytes=0-',
    'bytes=-1',
    'bytes=-0',
    'bytes=5-2',
    'bytes=0-1,2-3',
    'items=0-1',
    'bytes=',
    'bytes=-',
    'bytes= 1-2',
    'bytes=99999999999999999999-',
    'bytes=-99999999999999999999',
    'bytes=0-99999999999999999999',
    'BYTES=0-1',
    'bytes=1-2 ',
    'bytes=+1-2',
    'bytes=0x1-2',
  ),
  fc.tuple(fc.nat({ max: 400 }), fc.nat({ max: 400 })).map(([first, last]) => `bytes=${first}-${last}`),
  fc.nat({ max: 400 }).map((first) => `bytes=${first}-`),
  fc.nat({ max: 400 }).map((suffix) => `bytes=-${suffix}`),
  randomText.map(headerSafe),
);

export const contentTypeValue = fc.oneof(
  fc.constantFrom(
    'text/plain',
    'text/plain; charset=utf-8',
    'image/png',
    'image/svg+xml',
    'text/html',
    'application/json',
    'application/octet-stream',
    'application/x-www-form-urlencoded',
    'multipart/form-data',
    'TEXT/HTML',
    'text/html\u00ff',
    'no-slash',
    'a/b; x="\u00e9"',
    `x/${'y'.repeat(300)}`,
  ),
  randomText,
);

export const flowStep: fc.Arbitrary<FlowStep> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      scope: scopeIndex,
      ttlSeconds: ttl,
      joinTxnOf: fc.option(leasePick, { freq: 4 }),
      block: fc.boolean(),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('upload' as const),
      lease: leasePick,
      names: fc.array(validName, { minLength: 1, maxLength: 3 }),
      data: smallBytes,
      multipart: fc.boolean(),
      preventOverwrite: weightedBoolean(1, 4),
      maxBytes: fc.option(fc.nat({ max: 400 }), { freq: 5 }),
      checksum: fc.constantFrom('none', 'none', 'crc32', 'sha256', 'wrong'),
      contentType: fc.option(contentTypeValue, { freq: 2 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), lease: leasePick, target: fc.constantFrom('name', 'id', 'all'), name: validName }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('release' as const), lease: leasePick, rollback: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('keepalive' as const), lease: leasePick, ttlSeconds: ttl }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('list' as const), scope: scopeIndex, viaLease: fc.option(leasePick) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('download' as const),
      scope: scopeIndex,
      name: validName,
      viaLease: fc.option(leasePick, { freq: 3 }),
      range: fc.option(rangeHeader),
      method: fc.constantFrom('GET' as const, 'GET' as const, 'HEAD' as const),
      revalidate: weightedBoolean(1, 5),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('document' as const),
      names: fc.array(validName, { minLength: 1, maxLength: 2 }),
      data: fc.uint8Array({ maxLength: 200 }),
      multipart: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), seconds: fc.oneof(fc.constantFrom(0.5, 1, 5, 30, 61, 700), fc.double({ min: 0, max: 200, noNaN: true })) }) },
);

// ── Arbitrary requests ──────────────────────────────────────────────────────

export interface MultipartPartSpec {
  fieldName: string;
  filename: string | null;
  filenameStar: string | null;
  contentType: string | null;
  extraHeader: string | null;
  data: Uint8Array;
}

export interface MultipartSpec {
  boundary: string;
  /** The boundary written in the body; usually the declared one. */
  bodyBoundary: string;
  headerStyle: 'plain' | 'quoted' | 'missing' | 'upper' | 'extra-param';
  preamble: string;
  parts: MultipartPartSpec[];
  close: boolean;
  /** Cut the body after this fraction (1 = whole body). */
  keepFraction: number;
}

export type BodySpec =
  | { kind: 'none' }
  | { kind: 'bytes'; data: Uint8Array; contentType: string | null }
  | { kind: 'json'; value: Record<string, unknown>; contentType: string }
  | { kind: 'raw-json'; text: string; contentType: string }
  | { kind: 'multipart'; multipart: MultipartSpec };

export interface FuzzRequest {
  method: string;
  path: string;
  query: Array<[string, string]>;
  rawQuery: string | null;
  headers: Array<[string, string]>;
  lease: { pick: LeasePick; perturb: 'none' | 'lease' | 'txn' | 'fencing' | 'drop-txn' | 'drop-fencing' | 'negative-fencing' } | null;
  body: BodySpec;
  /** Send the body as a stream in chunks of this size (no Content-Length), else as bytes. */
  streamChunk: number | null;
}

const ROUTE_PATHS = ['/v1/acquire', '/v1/keepalive', '/v1/release', '/v1/attachments', '/v1/attachment', '/v1/healthz', '/v1/openapi.json'];
const ODD_PATHS = [
  '/',
  '/v1',
  '/v1/',
  '/v2/attachments',
  '/v1/attachments/',
  '/v1//attachments',
  '/v1/attachments/..',
  '/v1/../v1/attachment',
  '/v1/%2e%2e/attachments',
  '/v1/attachment%00',
  '/v1/ATTACHMENTS',
  '/v1/attachments;x',
  '/v1/__proto__',
  '/v1/constructor',
  '/v1/hasOwnProperty',
  '/v1/toString',
  '/v1/%F0%9F%92%A9',
  '/v1/attachment/%2F..%2F',
  '/v1\\attachments',
  '/v1/attachments%2f',
  '/v1/acquire/extra',
];

const pathArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...ROUTE_PATHS) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_PATHS) },
  { weight: 1, arbitrary: fc.webPath().map((path) => `/v1${path.startsWith('/') ? '' : '/'}${path}`) },
);

const methodArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'get', 'post', 'PROPFIND', 'X-CUSTOM') },
);

const QUERY_NAMES = ['namespace', 'key', 'name', 'id', 'public', 'max_bytes', 'prevent_overwrite', 'content_type'] as const;

const queryValueArb = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.constantFrom(LEASE, LEASE, 'true', '1', 'false', '0', 'yes', '-1', '1e3', '007', '99999999999999999999', '0x10') },
  { weight: 1, arbitrary: fc.uuid().map((id) => id) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map(String) },
);

const keyValueArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(LEASE, ...SCOPES.map((scope) => scope.key)) },
  { weight: 2, arbitrary: hostileString },
);

// Mostly well-known parameters, keys mostly valid: validation stops at the
// first bad parameter (API.md §3 check order), so names and ranges are only
// reached behind a good key.
const queryArb = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant('key'), keyValueArb) },
    { weight: 3, arbitrary: fc.tuple(fc.constant('name'), hostileString) },
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...QUERY_NAMES), queryValueArb) },
    { weight: 1, arbitrary: fc.tuple(randomText, queryValueArb) },
  ),
  { maxLength: 7 },
);

const rawQueryArb = fc.oneof(
  fc.constantFrom('%', '%zz', '%%', '&&==&', 'key', 'key=%E0%A4%A', 'name=%C0%AE%C0%AE', 'key=a%2Fb', 'name=a%00b', 'key=k1&key=k2', '+=+', `name=${'%41'.repeat(5000)}`),
  fc.string({ unit: 'binary-ascii', maxLength: 60 }),
);

const headerNameArb = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}$/);

const headerArb: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constant('Range'), rangeHeader) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('Content-Type'), contentTypeValue.map(headerSafe)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('If-None-Match'), fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '"a", "b"', ''), randomText.map(headerSafe))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Content-Digest'), fc.oneof(fc.constantFrom('sha-256=:AAAA:', 'sha-256=::', 'sha-512=:x:', 'sha-256', `sha-256=:${'A'.repeat(43)}=:`), randomText.map(headerSafe))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('X-Attachment-CRC32'), fc.oneof(fc.constantFrom('00000000', 'ZZZZZZZZ', 'abc', '123456789', 'DEADBEEF'), randomText.map(headerSafe))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Content-Length'), fc.oneof(fc.nat({ max: 100_000 }).map(String), fc.constantFrom('-1', 'abc', '1e3', '99999999999999999999999', ''))) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('X-Lease-ID', 'X-Txn-ID', 'X-Fencing-Token'), fc.oneof(hostileString.map(headerSafe), fc.constantFrom('-1', '1.5', '9007199254740993', '0', ' 1', '+1'))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('Authorization'), fc.oneof(fc.constantFrom('Bearer x', 'Basic eDp5', 'Bearer'), randomText.map(headerSafe))) },
  { weight: 1, arbitrary: fc.tuple(headerNameArb, randomText.map(headerSafe)) },
);

const jsonFieldValue = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(LEASE, LEASE, OTHER_TXN) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(0, -1, -2, 1, 0.001, 1.5, 30, 1e9, 1e9 + 1, 604_800, 604_801, 1e308, -0, null, true, false, [], {}, '30', Number.MAX_SAFE_INTEGER + 2),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

const leaseJsonArb = fc
  .record(
    {
      namespace: jsonFieldValue,
      key: jsonFieldValue,
      ttl_seconds: jsonFieldValue,
      owner: fc.oneof(fc.constant<unknown>('fuzzer'), jsonFieldValue),
      // Never a valid blocking value (0 or > 0): the test's clock does not move while a request waits.
      block_seconds: fc.constantFrom<unknown>(-1, -2, 1.5, '1', null, true, [], Number.NaN),
      txn_id: jsonFieldValue,
      lease_id: jsonFieldValue,
      rollback: fc.oneof(fc.boolean(), jsonFieldValue),
    },
    { requiredKeys: [] },
  )
  .map((value) => value as Record<string, unknown>);

const jsonContentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/merge-patch+json', 'text/plain', 'APPLICATION/JSON', 'application/jsonx') },
);

const rawJsonText = fc.oneof(
  fc.constantFrom('', 'null', '[]', '"x"', '{', '{"key":', '{"key":"k1",}', '\ufeff{}', `{"owner":"${'o'.repeat(70_000)}"}`, `${'['.repeat(20_000)}${']'.repeat(20_000)}`, '{"__proto__":{"key":"k1"}}', '{"key":"k1","key":"k2","ttl_seconds":5,"owner":"x"}'),
  fc.string({ maxLength: 80 }),
);

const partSpec: fc.Arbitrary<MultipartPartSpec> = fc.record({
  fieldName: fc.oneof(fc.constantFrom('file', 'files', 'name', ''), randomText),
  filename: fc.option(fc.oneof(validName, hostileString), { freq: 6 }),
  filenameStar: fc.option(fc.oneof(validName.map((name) => `UTF-8''${encodeURIComponent(name)}`), fc.constantFrom("UTF-8''%E2%82", "utf-8'en'%41", "ISO-8859-1''%E9", "UTF-8''..%2F..%2Fx", 'garbage')), { freq: 4 }),
  contentType: fc.option(contentTypeValue.map(headerSafe), { freq: 2 }),
  extraHeader: fc.option(fc.oneof(fc.constantFrom('Content-Transfer-Encoding: base64', `X-Long: ${'h'.repeat(20_000)}`, 'no colon here', ': empty name'), randomText.map(headerSafe)), { freq: 5 }),
  data: fc.uint8Array({ maxLength: 200 }),
});

const boundaryArb = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[A-Za-z0-9'()+_,.:=?-]{1,70}$/) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(71), 'a b', 'a"b', '--', ' ', 'é', '\u00ff') },
);

const multipartArb: fc.Arbitrary<MultipartSpec> = fc
  .record({
    boundary: boundaryArb,
    otherBoundary: fc.option(boundaryArb, { freq: 8 }),
    headerStyle: fc.constantFrom('plain', 'plain', 'plain', 'quoted', 'missing', 'upper', 'extra-param'),
    preamble: fc.oneof(fc.constant(''), fc.constant('preamble\r\n'), randomText),
    parts: fc.array(partSpec, { maxLength: 4 }),
    close: weightedBoolean(5, 1),
    keepFraction: fc.oneof(fc.constant(1), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
  })
  .map(({ otherBoundary, ...spec }) => ({ ...spec, bodyBoundary: otherBoundary ?? spec.boundary }));

const bodyArb: fc.Arbitrary<BodySpec> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('bytes' as const), data: smallBytes, contentType: fc.option(contentTypeValue.map(headerSafe)) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('json' as const), value: leaseJsonArb, contentType: jsonContentType }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw-json' as const), text: rawJsonText, contentType: jsonContentType }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('multipart' as const), multipart: multipartArb }) },
);

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: methodArb,
  path: pathArb,
  query: queryArb,
  rawQuery: fc.option(rawQueryArb, { freq: 6 }),
  headers: fc.array(headerArb, { maxLength: 4 }),
  lease: fc.option(
    fc.record({
      pick: leasePick,
      perturb: fc.constantFrom('none', 'none', 'none', 'lease', 'txn', 'fencing', 'drop-txn', 'drop-fencing', 'negative-fencing'),
    }),
    { freq: 2 },
  ),
  body: bodyArb,
  streamChunk: fc.option(fc.integer({ min: 1, max: 64 }), { freq: 4 }),
});

export type Step = { kind: 'fuzz'; request: FuzzRequest } | FlowStep;

/** Half valid flows, half arbitrary requests, interleaved. */
export const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: flowStep },
  { weight: 1, arbitrary: fuzzRequest.map((request) => ({ kind: 'fuzz' as const, request })) },
);
