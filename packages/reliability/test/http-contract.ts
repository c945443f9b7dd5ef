// Response checks every fuzzed, security and load request must pass: the
// error contract of API.md §3 (documented code for the status, JSON body of
// exactly {error, detail, retry_after_seconds?}, no stack trace), plus the
// headers the contract ties to particular statuses. Each check returns the
// list of violations so a caller can report all of them at once.

/** API.md §3, plus `405 method_not_allowed` (docs/architecture.md, deviation 3). */
export const DOCUMENTED_ERROR_CODES: Readonly<Record<number, readonly string[]>> = {
  400: [
    'missing_key',
    'invalid_key',
    'invalid_namespace',
    'missing_name',
    'invalid_name',
    'missing_lease',
    'missing_txn',
    'missing_fencing_token',
    'invalid_fencing_token',
    'invalid_max_bytes',
    'checksum_mismatch',
    'size_mismatch',
    'invalid_body',
    'invalid_ref',
    // docs/http.md: unknown or repeated query parameters, malformed media types.
    'invalid_query',
    'invalid_content_type',
  ],
  401: ['unauthorized'],
  403: ['lease_required', 'lease_expired', 'fencing_mismatch'],
  404: ['attachment_not_found', 'not_found'],
  405: ['method_not_allowed'],
  409: ['waiting', 'txn_mismatch', 'txn_rolled_back', 'txn_committed', 'document_key'],
  413: ['attachment_too_large'],
  416: ['range_not_satisfiable'],
  503: ['unavailable'],
};

// Traces of an internal failure leaking into a body: a V8 stack frame, a
// source file position, or an absolute path of this machine.
const LEAK_PATTERNS: readonly RegExp[] = [
  /\n\s+at\s/,
  /\bat\s+(?:async\s+)?[\w$.<>]+\s+\((?:file:|node:|\/)/,
  /\.(?:ts|js|mjs|cjs):\d+:\d+/,
  /node_modules/,
  /\/work\/|\/tmp\/|\/home\//,
  /\b(?:TypeError|RangeError|ReferenceError|SyntaxError):/,
];

export function leaksInternals(text: string): boolean {
  return LEAK_PATTERNS.some((pattern) => pattern.test(text));
}

export interface ObservedResponse {
  status: number;
  headers: Headers;
  /** The whole body (empty for HEAD, 204, 304). */
  body: Uint8Array;
}

/** Reads a response completely; a body stream that errors half-way is a failure of its own. */
export async function observe(response: Response): Promise<ObservedResponse> {
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

export function isJsonResponse(headers: Headers): boolean {
  const type = headers.get('Content-Type') ?? '';
  return /^application\/json\s*(?:;|$)/i.test(type);
}

const decoder = new TextDecoder();

/**
 * Violations of the contract by one response. `downloadBody` says the body
 * is attachment bytes (user data, never inspected for leaks).
 */
export function contractViolations(observed: ObservedResponse, options: { downloadBody: boolean }): string[] {
  const violations: string[] = [];
  const { status, headers } = observed;
  if (status >= 500) violations.push(`status ${status} (a 5xx for a request the server should have judged)`);
  const text = decoder.decode(observed.body);
  if (!options.downloadBody && leaksInternals(text)) violations.push(`body leaks internals: ${text.slice(0, 300)}`);

  if (status >= 400) {
    if (!isJsonResponse(headers)) violations.push(`error ${status} with Content-Type ${headers.get('Content-Type')}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      violations.push(`error ${status} body is not JSON: ${text.slice(0, 200)}`);
      return violations;
    }
    violations.push(...errorBodyViolations(status, parsed));
    const code = (parsed as { error?: unknown }).error;
    if (status === 401 && !headers.has('WWW-Authenticate')) violations.push('401 without WWW-Authenticate');
    if (status === 405 && !headers.has('Allow')) violations.push('405 without Allow');
    if (status === 416 && !/^bytes \*\/\d+$/.test(headers.get('Content-Range') ?? '')) {
      violations.push(`416 with Content-Range ${headers.get('Content-Range')}`);
    }
    if (code === 'waiting') {
      const retryAfter = headers.get('Retry-After');
      const seconds = (parsed as { retry_after_seconds?: unknown }).retry_after_seconds;
      if (retryAfter === null || !/^[1-9]\d*$/.test(retryAfter) || Number(retryAfter) !== seconds) {
        violations.push(`waiting with Retry-After ${retryAfter} and retry_after_seconds ${String(seconds)}`);
      }
    }
  }
  return violations;
}

/** `{error: <documented code for this status>, detail: string, retry_after_seconds?: positive integer}`, nothing else. */
export function errorBodyViolations(status: number, body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [`error body is not an object`];
  const violations: string[] = [];
  const record = body as Record<string, unknown>;
  const extra = Object.keys(record).filter((field) => !['error', 'detail', 'retry_after_seconds'].includes(field));
  if (extra.length > 0) violations.push(`error body has undocumented fields ${extra.join(', ')}`);
  const allowed = DOCUMENTED_ERROR_CODES[status];
  if (allowed === undefined) violations.push(`status ${status} is not in API.md §3`);
  else if (typeof record.error !== 'string' || !allowed.includes(record.error)) {
    violations.push(`status ${status} with code ${JSON.stringify(record.error)} (documented: ${allowed.join(', ')})`);
  }
  if (typeof record.detail !== 'string' || record.detail === '') violations.push('detail is not a non-empty string');
  const retry = record.retry_after_seconds;
  if (retry !== undefined && !(Number.isSafeInteger(retry) && (retry as number) >= 1)) {
    violations.push(`retry_after_seconds ${JSON.stringify(retry)} is not a positive integer`);
  }
  return violations;
}

/** Counts requests per status (and per label) for the printed summary. */
export class StatusTally {
  total = 0;
  readonly byStatus = new Map<number, number>();
  readonly byCode = new Map<string, number>();

  record(status: number, code?: string): void {
    this.total += 1;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (code !== undefined) this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  count(predicate: (status: number) => boolean): number {
    let sum = 0;
    for (const [status, count] of this.byStatus) if (predicate(status)) sum += count;
    return sum;
  }

  summary(title: string): string {
    const statuses = [...this.byStatus].sort(([a], [b]) => a - b).map(([status, count]) => `${status}: ${count}`);
    const codes = [...this.byCode].sort(([, a], [, b]) => b - a).map(([code, count]) => `${code} ${count}`);
    return `${title}: ${this.total} requests\n  by status: ${statuses.join(', ')}\n  error codes: ${codes.join(', ') || 'none'}`;
  }
}
