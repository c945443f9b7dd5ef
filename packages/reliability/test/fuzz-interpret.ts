// Reads a request and the handler's answer the way the server reads the
// request (API.md §2), and applies a successful answer to the model. Only
// 2xx answers change the model: an error must have changed nothing, which
// the next list of the key (and the final check) proves.
import type { ObservedResponse } from './http-contract.js';
import type { AttachmentWire, HandlerModel, ScopeRef } from './fuzz-model.js';

export interface SentRequest {
  method: string;
  url: string;
  headers: Headers;
  /** The body bytes as sent (undefined: no body). */
  body: Uint8Array | undefined;
}

export const BASE_PATH = '/v1';

/** `/v1/attachments/` → `/attachments`, as the handler routes it; undefined outside the base path. */
export function routeOf(url: string): string | undefined {
  const pathname = new URL(url).pathname;
  if (pathname !== BASE_PATH && !pathname.startsWith(`${BASE_PATH}/`)) return undefined;
  const rest = pathname.slice(BASE_PATH.length);
  const trimmed = rest.length > 1 && rest.endsWith('/') ? rest.slice(0, -1) : rest;
  return trimmed === '' ? '/' : trimmed;
}

function query(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  return value === null || value === '' ? undefined : value;
}

function queryScope(url: URL): ScopeRef | undefined {
  const key = query(url, 'key');
  return key === undefined ? undefined : { namespace: query(url, 'namespace') ?? 'default', key };
}

function hasLeaseHeaders(headers: Headers): boolean {
  return headers.has('X-Lease-ID') || headers.has('X-Txn-ID') || headers.has('X-Fencing-Token');
}

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function parseJson(bytes: Uint8Array | undefined): Record<string, unknown> | undefined {
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The lease id a lease call names: the body's `lease_id` when it is a non-empty string, else the header. */
function bodyLeaseId(json: Record<string, unknown>, headers: Headers): string | undefined {
  const fromBody = json.lease_id;
  if (typeof fromBody === 'string' && fromBody !== '') return fromBody;
  return headers.get('X-Lease-ID') ?? undefined;
}

export function interpret(model: HandlerModel, sent: SentRequest, answer: ObservedResponse): void {
  const url = new URL(sent.url);
  const route = routeOf(sent.url);
  const scope = queryScope(url);
  if (scope) model.touched.add(`${scope.namespace}\u0000${scope.key}`);
  if (answer.status < 200 || answer.status >= 300) return;
  const json = answer.headers.get('Content-Type')?.startsWith('application/json') ? parseJson(answer.body) : undefined;

  switch (`${sent.method} ${route}`) {
    case 'POST /acquire': {
      const request = parseJson(sent.body);
      const lease = json as { lease_id: string; txn_id: string; namespace: string; key: string; fencing_token: number };
      if (request === undefined || typeof request.ttl_seconds !== 'number') {
        return model.fail(`acquire answered ${answer.status} for a body without a numeric ttl_seconds`);
      }
      return model.acquired(lease, request.ttl_seconds);
    }
    case 'POST /keepalive': {
      const request = parseJson(sent.body)!;
      const leaseId = bodyLeaseId(request, sent.headers);
      if (leaseId !== undefined) model.keptAlive(leaseId, request.ttl_seconds as number);
      return;
    }
    case 'POST /release': {
      const request = parseJson(sent.body)!;
      const leaseId = bodyLeaseId(request, sent.headers);
      if (leaseId !== undefined) model.released(leaseId, request.rollback === true);
      return;
    }
    case 'POST /attachments': {
      const answered = json as { attachment?: AttachmentWire; attachments?: AttachmentWire[] };
      const attachments = answered.attachments ?? (answered.attachment ? [answered.attachment] : []);
      if (scope === undefined) return model.documentsCommitted(attachments);
      return model.staged(sent.headers.get('X-Lease-ID') ?? '', attachments);
    }
    case 'GET /attachments': {
      const answered = json as { namespace: string; key: string; attachments: AttachmentWire[] };
      const leaseRead = !isTrue(url.searchParams.get('public')) && hasLeaseHeaders(sent.headers);
      return model.listed(
        { namespace: answered.namespace, key: answered.key },
        leaseRead ? (sent.headers.get('X-Lease-ID') ?? '') : undefined,
        answered.attachments,
      );
    }
    case 'DELETE /attachment': {
      const id = query(url, 'id');
      const name = query(url, 'name');
      const selector = id !== undefined ? { id: id.toLowerCase() } : { name: name! };
      return model.deletedOne(sent.headers.get('X-Lease-ID') ?? '', scope!, selector, (json as { deleted: boolean }).deleted);
    }
    case 'DELETE /attachments':
      return model.deletedAll(sent.headers.get('X-Lease-ID') ?? '', scope!, (json as { deleted: number }).deleted);
    case 'GET /attachment':
    case 'HEAD /attachment':
      return checkDownload(model, sent, url, scope, answer);
    default:
      return;
  }
}

/** A successful download of a keyed name must serve the bytes the model holds for it. */
function checkDownload(model: HandlerModel, sent: SentRequest, url: URL, scope: ScopeRef | undefined, answer: ObservedResponse): void {
  const name = query(url, 'name');
  if (scope === undefined || name === undefined || query(url, 'id') !== undefined) return;
  const leaseRead = !isTrue(url.searchParams.get('public')) && hasLeaseHeaders(sent.headers);
  const txnId = leaseRead ? model.leases.get(sent.headers.get('X-Lease-ID') ?? '')?.txnId : undefined;
  const entry = model.visible(scope, txnId).get(name);
  const served = answer.headers.get('X-Attachment-SHA256');
  if (entry === undefined) {
    model.fail(`download of ${scope.key}/${JSON.stringify(name)} answered ${answer.status}, the model has no such attachment`);
  } else if (served !== entry.sha256) {
    model.fail(`download of ${scope.key}/${JSON.stringify(name)} served sha256 ${served}, the model has ${entry.sha256}`);
  }
  if (answer.headers.get('X-Content-Type-Options') !== 'nosniff') model.fail('download without X-Content-Type-Options: nosniff');
  if (answer.status === 200 && sent.method === 'GET' && entry !== undefined && answer.body.byteLength !== entry.size) {
    model.fail(`download of ${JSON.stringify(name)} sent ${answer.body.byteLength} bytes, the attachment has ${entry.size}`);
  }
}
