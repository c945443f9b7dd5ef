// Wire format: snake_case JSON objects, unix seconds, and reading JSON
// request bodies with a size cap (lease calls carry a few small fields).
import { AttacheError } from '../errors.js';
import { concatBytes, readUpTo } from '../streams.js';
import { parseMediaType } from '../media-type.js';
import type { Attachment, LeaseInfo } from '../types.js';

export const JSON_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json; charset=utf-8',
  // Responses carry lease ids and staged state: never worth caching.
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/** Largest JSON request body accepted (lease calls are a few hundred bytes). */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

export interface AttachmentJson {
  id: string;
  name: string;
  namespace: string;
  key: string;
  size: number;
  content_type: string;
  extension: string | null;
  crc32: string;
  sha256: string;
  created_at_unix: number;
  updated_at_unix: number;
}

export interface LeaseJson {
  lease_id: string;
  txn_id: string;
  key: string;
  namespace: string;
  owner: string;
  expires_at_unix: number;
  fencing_token: number;
}

export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

export function attachmentToJson(attachment: Attachment): AttachmentJson {
  return {
    id: attachment.id,
    name: attachment.name,
    namespace: attachment.namespace,
    key: attachment.key,
    size: attachment.size,
    content_type: attachment.contentType,
    extension: attachment.extension,
    crc32: attachment.crc32,
    sha256: attachment.sha256,
    created_at_unix: unixSeconds(attachment.createdAt),
    updated_at_unix: unixSeconds(attachment.updatedAt),
  };
}

export function leaseToJson(lease: LeaseInfo): LeaseJson {
  return {
    lease_id: lease.leaseId,
    txn_id: lease.txnId,
    key: lease.key,
    namespace: lease.namespace,
    owner: lease.owner,
    expires_at_unix: unixSeconds(lease.expiresAt),
    fencing_token: lease.fencingToken,
  };
}

/**
 * The one serialisation of every JSON answer (errors.ts uses it too): compact
 * JSON ending in a newline, so answers printed by curl end their line.
 */
export function jsonText(body: unknown): string {
  return `${JSON.stringify(body)}\n`;
}

export function jsonResponse(body: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  const headers = new Headers(JSON_HEADERS);
  for (const [name, value] of Object.entries(init.headers ?? {})) headers.set(name, value);
  return new Response(jsonText(body), { status: init.status ?? 200, headers });
}

export type JsonObject = Record<string, unknown>;

/**
 * Reads a JSON object body. The media type must be JSON (API.md §2) — which
 * also means a cross-site HTML form cannot forge a lease call without a CORS
 * preflight. Stops reading past `MAX_JSON_BODY_BYTES`.
 */
export async function readJsonObject(request: Request): Promise<JsonObject> {
  const contentType = request.headers.get('Content-Type');
  if (contentType !== null && contentType.trim() !== '' && parseMediaType(contentType) === undefined) {
    throw new AttacheError('invalid_content_type', 'Content-Type must be one media type: application/json');
  }
  if (!isJsonMediaType(contentType)) {
    throw new AttacheError('invalid_body', 'the body must be JSON with Content-Type: application/json');
  }
  const bytes = await readCapped(request.body, MAX_JSON_BODY_BYTES);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AttacheError('invalid_body', 'the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AttacheError('invalid_body', 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AttacheError('invalid_body', 'the body must be a JSON object');
  }
  return value as JsonObject;
}

function isJsonMediaType(contentType: string | null): boolean {
  const mediaType = contentType === null ? undefined : parseMediaType(contentType);
  if (mediaType === undefined) return false;
  return mediaType.essence === 'application/json' || (mediaType.type === 'application' && mediaType.subtype.endsWith('+json'));
}

async function readCapped(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const { chunks, size, ended } = await readUpTo(reader, limit);
  if (!ended) {
    // Left unread, not cancelled: the host discards the rest (streams.ts, requestBodyOf).
    reader.releaseLock();
    throw new AttacheError('invalid_body', `the JSON body is larger than ${limit} bytes`);
  }
  return concatBytes(chunks, size);
}
