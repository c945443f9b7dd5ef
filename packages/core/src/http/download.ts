// Downloads: response headers, single byte ranges (RFC 9110 §14), ETag
// revalidation (If-None-Match → 304) and a Content-Disposition that is safe
// for any stored name (RFC 6266 + RFC 8187/5987 encoding).
// `If-Range` and `If-Modified-Since` are ignored: a range is always served
// from the current version, and the strong ETag makes dates redundant.
import { AttacheError } from '../errors.js';
import type { Attachment, OpenedAttachment, OpenOptions } from '../types.js';
import { errorResponse } from './errors.js';
import { formatMediaType, parseMediaType, type MediaType } from '../media-type.js';

/** A syntactically valid single range, before it is checked against a size. */
export type RequestedRange = { kind: 'from'; first: number; last?: number } | { kind: 'suffix'; length: number };

/**
 * Parses `Range: bytes=a-b | a- | -n`. Anything else — other units, several
 * ranges, malformed or reversed positions — is `undefined`: the header is
 * ignored and the full body served, as RFC 9110 allows.
 */
export function parseRange(header: string | null): RequestedRange | undefined {
  if (header === null) return undefined;
  const match = /^bytes=[ \t]*([0-9]*)-([0-9]*)[ \t]*$/i.exec(header.trim());
  if (!match) return undefined;
  const [, firstText = '', lastText = ''] = match;
  if (firstText === '') {
    if (lastText === '') return undefined;
    // A suffix longer than any safe integer simply means "everything".
    return { kind: 'suffix', length: Math.min(Number(lastText), Number.MAX_SAFE_INTEGER) };
  }
  const first = Math.min(Number(firstText), Number.MAX_SAFE_INTEGER);
  if (lastText === '') return { kind: 'from', first };
  const last = Math.min(Number(lastText), Number.MAX_SAFE_INTEGER);
  if (last < first) return undefined;
  return { kind: 'from', first, last };
}

export type ResolvedRange = { start: number; end: number } | 'unsatisfiable' | 'full';

/** Applies a requested range to a representation of `size` bytes (end inclusive). */
export function resolveRange(range: RequestedRange, size: number): ResolvedRange {
  if (range.kind === 'suffix') {
    if (range.length === 0) return 'unsatisfiable';
    // A non-zero suffix is satisfiable even for an empty body; there is nothing to slice.
    if (size === 0) return 'full';
    return { start: Math.max(0, size - range.length), end: size - 1 };
  }
  if (range.first >= size) return 'unsatisfiable';
  return { start: range.first, end: Math.min(range.last ?? size - 1, size - 1) };
}

export function etagOf(attachment: Attachment): string {
  return `"${attachment.sha256}"`;
}

/** `If-None-Match` with weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag equal to ours ignoring `W/`. */
export function ifNoneMatchMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  for (const match of header.matchAll(/(?:W\/)?"[^"]*"/g)) {
    if (match[0].replace(/^W\//, '') === opaque) return true;
  }
  return false;
}

/** Types a browser may render in place; everything else downloads. */
const INLINE_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'application/pdf',
  'text/plain',
]);

/** Decided on the parsed type only: what a browser renders is what its parser reads, never a prefix of the text. */
export function isInlineType(mediaType: MediaType): boolean {
  return INLINE_TYPES.has(mediaType.essence);
}

// Lone surrogates cannot be UTF-8 encoded (encodeURIComponent throws on them).
const LONE_SURROGATES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATES, '\ufffd');
}

/** RFC 3986 percent-encoding of a name, for `X-Attachment-Name`. */
export function encodeHeaderName(name: string): string {
  return encodeURIComponent(wellFormed(name));
}

/**
 * `attachment; filename="<ascii>"; filename*=UTF-8''<pct>` (or `inline`).
 * The ASCII fallback replaces every character outside printable ASCII, and
 * `"`, `\` and `%` (some browsers percent-decode `filename=`), with `_`.
 */
export function contentDisposition(name: string, inline: boolean): string {
  const fallback = Array.from(name, (char) => (/^[\x20-\x7e]$/.test(char) && !/["\\%]/.test(char) ? char : '_')).join('');
  // RFC 8187 attr-char excludes ' ( ) * which encodeURIComponent leaves alone.
  const encoded = encodeURIComponent(wellFormed(name)).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${inline ? 'inline' : 'attachment'}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** Headers describing an attachment, shared by 200, 206, 304 and HEAD. */
export function attachmentHeaders(attachment: Attachment, options: { leaseRead: boolean }): Headers {
  // The stored type was checked on upload over HTTP; one that is not a valid
  // media type (set through the TS API, or stored before the check was
  // strict, like `image/png;,text/html`) is served as bytes, never inline.
  const mediaType = parseMediaType(attachment.contentType);
  const contentType = mediaType ? formatMediaType(mediaType) : 'application/octet-stream';
  const inline = mediaType !== undefined && isInlineType(mediaType);
  const headers = new Headers({
    'Content-Type': contentType,
    ETag: etagOf(attachment),
    'Last-Modified': attachment.updatedAt.toUTCString(),
    'Accept-Ranges': 'bytes',
    'X-Attachment-ID': attachment.id,
    'X-Attachment-Name': encodeHeaderName(attachment.name),
    'X-Attachment-Size': String(attachment.size),
    'X-Attachment-SHA256': attachment.sha256,
    'X-Attachment-CRC32': attachment.crc32,
    'X-Content-Type-Options': 'nosniff',
    'Content-Disposition': contentDisposition(attachment.name, inline),
    // Committed bytes under a name can change (overwrite): always revalidate,
    // and never let a shared cache keep what a lease holder saw staged.
    'Cache-Control': options.leaseRead ? 'private, no-cache' : 'no-cache',
  });
  // A rendered file must not run scripts in our origin.
  if (inline) headers.set('Content-Security-Policy', 'sandbox');
  return headers;
}

/** What a download route needs from either face (public store or lease). */
export interface AttachmentSource {
  get(): Promise<Attachment>;
  open(options: OpenOptions): Promise<OpenedAttachment>;
  leaseRead: boolean;
}

/**
 * Serves GET or HEAD. With `Range` or `If-None-Match`, the metadata is read
 * first: the size is needed for `Content-Range` (also on 416) and a matching
 * ETag must not open the blob at all.
 */
export async function serveDownload(request: Request, source: AttachmentSource): Promise<Response> {
  const head = request.method === 'HEAD';
  const requestedRange = parseRange(request.headers.get('Range'));
  const ifNoneMatch = request.headers.get('If-None-Match');

  let range: { start: number; end: number } | undefined;
  let knownSize: number | undefined;
  if (requestedRange !== undefined || ifNoneMatch !== null) {
    const attachment = await source.get();
    knownSize = attachment.size;
    if (ifNoneMatchMatches(ifNoneMatch, etagOf(attachment))) {
      const headers = attachmentHeaders(attachment, source);
      for (const name of ['Content-Type', 'Content-Disposition', 'Content-Security-Policy']) headers.delete(name);
      return new Response(null, { status: 304, headers });
    }
    if (requestedRange !== undefined) {
      const resolved = resolveRange(requestedRange, attachment.size);
      if (resolved === 'unsatisfiable') return unsatisfiable(attachment.size);
      if (resolved !== 'full') range = resolved;
    }
  }

  let opened: OpenedAttachment;
  try {
    opened = await source.open(range === undefined ? { signal: request.signal } : { range, signal: request.signal });
  } catch (error) {
    // The attachment shrank between reading its size and opening it.
    if (error instanceof AttacheError && error.code === 'range_not_satisfiable' && knownSize !== undefined) {
      return unsatisfiable(knownSize);
    }
    throw error;
  }

  const { attachment } = opened;
  const headers = attachmentHeaders(attachment, source);
  let status = 200;
  let length = attachment.size;
  if (opened.range !== null && range !== undefined) {
    status = 206;
    length = opened.range.end - opened.range.start + 1;
    headers.set('Content-Range', `bytes ${opened.range.start}-${opened.range.end}/${attachment.size}`);
  }
  headers.set('Content-Length', String(length));
  if (head) {
    await opened.body.cancel().catch(() => undefined);
    return new Response(null, { status, headers });
  }
  return new Response(opened.body, { status, headers });
}

function unsatisfiable(size: number): Response {
  return errorResponse(new AttacheError('range_not_satisfiable', `the range is outside the ${size} bytes of the attachment`), {
    headers: { 'Content-Range': `bytes */${size}` },
  });
}
