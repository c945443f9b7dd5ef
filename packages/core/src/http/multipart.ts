// Streaming multipart/form-data over multipasta's push parser, driven by
// pull so backpressure reaches the request body: a chunk of the request is
// read only when the consumer of the current part wants more bytes and
// everything parsed so far has been handed over. Memory stays bounded by
// about one request chunk, whatever the size of the parts.
//
// `multipasta/web` is not used on purpose: its writable side accepts chunks
// without waiting for part consumers, so a slow consumer buffers unboundedly.
import { make as makeParser, type MultipartError, type PartInfo } from 'multipasta';
import { AttacheError } from '../errors.js';
import { missingBoundaryError } from './upload-errors.js';
import { formatMediaType, normalizeMediaType, parseMediaType } from '../media-type.js';

/** One file part: a name (its filename), its form field, its declared type, and its bytes. */
export interface MultipartUpload {
  name: string;
  /** The form field the file was sent in (`<input name="…">`). */
  field: string;
  /** The part's `Content-Type` in canonical form, or undefined when the part has none (a malformed one fails the upload). */
  contentType: string | undefined;
  body: ReadableStream<Uint8Array>;
}

export interface MultipartUploads extends AsyncIterable<MultipartUpload> {
  /**
   * Set once the envelope turned out to be malformed. The consumer may wrap
   * or replace the error a part body raised; this is the one to report.
   */
  readonly failure: AttacheError | undefined;
}

type ParseEvent =
  | { type: 'part'; info: PartInfo }
  | { type: 'chunk'; bytes: Uint8Array }
  | { type: 'part-end' }
  | { type: 'done' }
  | { type: 'error'; error: unknown };

/**
 * Parses a `multipart/form-data` request into its file parts (parts with a
 * non-empty `filename`); other fields are read and discarded (a form with no
 * file part yields nothing: whoever stores the parts decides). Each part's
 * body must be consumed or cancelled before the next part is taken; a part
 * left unfinished is discarded (its stream errors) when the next is requested.
 *
 * A malformed envelope — no boundary, bad part headers, or a body that ends
 * before the closing boundary — errors the current part's body (so a consumer
 * storing it keeps nothing) and the iteration, with `invalid_body`.
 */
/**
 * Runs `run` (which stores the parts of `uploads`) and reports a malformed
 * envelope as the parser's own `invalid_body`: the engine sees it only as an
 * error of some part body or of the iteration, and may wrap it.
 */
export async function reportingEnvelopeFailure<T>(uploads: MultipartUploads, run: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await run();
  } catch (error) {
    throw uploads.failure ?? error;
  }
  if (uploads.failure) throw uploads.failure;
  return result;
}

/** Parts (files and fields) one multipart request may have. */
export const MAX_MULTIPART_PARTS = 1000;

/** `body` replaces `request.body` (e.g. a wrapped one); the boundary comes from the request's headers. */
export function parseMultipartUploads(
  request: Request,
  body: ReadableStream<Uint8Array> | null = request.body,
): MultipartUploads {
  let failure: AttacheError | undefined;
  const fail = (message: string, code: 'invalid_body' | 'invalid_content_type' = 'invalid_body'): AttacheError => {
    failure ??= new AttacheError(code, message);
    return failure;
  };
  // The envelope's type through core's parser: multipasta and the boundary
  // guard below then read the same canonical header.
  const rawContentType = request.headers.get('Content-Type') ?? '';
  const envelopeType = parseMediaType(rawContentType);

  async function* iterate(): AsyncGenerator<MultipartUpload, void, undefined> {
    const reader = body?.getReader();
    const queue: ParseEvent[] = [];
    let finished = false; // `done` or `error` queued: nothing more to read

    const parser = makeParser({
      headers: { 'content-type': envelopeType ? formatMediaType(envelopeType) : rawContentType },
      // Every part goes through the streaming path; fields are skipped below
      // rather than buffered whole by the parser.
      isFile: () => true,
      // Each part costs a blob and a row; a form with more is refused.
      maxParts: MAX_MULTIPART_PARTS,
      onField: () => undefined,
      onFile: (info) => {
        queue.push({ type: 'part', info });
        return (chunk) => queue.push(chunk === null ? { type: 'part-end' } : { type: 'chunk', bytes: chunk });
      },
      onError: (error) => {
        if (finished) return;
        finished = true;
        queue.push({ type: 'error', error: fail(describeMultipartError(error)) });
      },
      onDone: () => {
        if (finished) return;
        finished = true;
        queue.push({ type: 'done' });
      },
    });

    const guard = new ClosingBoundaryGuard(parser, envelopeType?.parameters.get('boundary'));

    /** Reads and parses one request chunk; only called when every parsed event was taken. */
    async function readMore(): Promise<void> {
      if (reader === undefined) {
        parser.end();
        if (!finished) queue.push({ type: 'error', error: fail('the multipart body is empty') });
        finished = true;
        return;
      }
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        // The client went away or the body broke: not an envelope problem.
        finished = true;
        queue.push({ type: 'error', error });
        return;
      }
      if (result.done) {
        guard.end();
        // multipasta reports a missing closing boundary only inside a part body.
        if (!finished) queue.push({ type: 'error', error: fail('the multipart body ends before its closing boundary') });
        finished = true;
        return;
      }
      guard.write(result.value);
    }

    let terminal: ParseEvent | undefined; // `done` or `error`, repeated to any later caller

    async function nextEvent(): Promise<ParseEvent> {
      if (terminal !== undefined) return terminal;
      while (queue.length === 0) await readMore();
      const event = queue.shift()!;
      // After the closing boundary or an error the parser may still emit
      // (epilogue, follow-up errors); nothing after that point matters.
      if (event.type === 'done' || event.type === 'error') {
        terminal = event;
        queue.length = 0;
      }
      return event;
    }

    /** Discards the rest of the current part. */
    async function skipPart(): Promise<void> {
      for (;;) {
        const event = await nextEvent();
        if (event.type === 'part-end') return;
        if (event.type === 'error') throw event.error;
        if (event.type === 'done') throw fail('a part ends without a boundary');
      }
    }

    let current: PartStream | undefined;
    try {
      for (;;) {
        const event = await nextEvent();
        if (event.type === 'done') break;
        if (event.type === 'error') throw event.error;
        if (event.type !== 'part') continue; // stray chunk of a part already discarded
        const filename = event.info.filename;
        if (filename === undefined || filename === '') {
          await skipPart();
          continue;
        }
        const contentType = partContentType(event.info);
        if (contentType === 'invalid') {
          throw fail(`the Content-Type of part "${filename}" is not one valid media type (RFC 9110)`, 'invalid_content_type');
        }
        current = new PartStream(nextEvent, fail);
        yield { name: filename, field: event.info.name, contentType, body: current.stream };
        // The consumer asks for the next part: make sure this one is over.
        await current.finish();
        current = undefined;
      }
    } finally {
      current?.abandon();
      // Release rather than cancel the request body: cancelling may tear down
      // the connection before the error response is written.
      reader?.releaseLock();
    }
  }

  return {
    get failure() {
      return failure;
    },
    [Symbol.asyncIterator]: () => iterate(),
  };
}

/** The byte stream of one part, pulled one parsed chunk at a time. */
class PartStream {
  readonly stream: ReadableStream<Uint8Array>;
  private ended = false; // part-end, error, or cancel: no more pulls will come
  private cancelled = false;
  private pulling: Promise<void> | undefined;
  private controller!: ReadableStreamDefaultController<Uint8Array>;

  constructor(
    private readonly nextEvent: () => Promise<ParseEvent>,
    private readonly fail: (message: string) => AttacheError,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: (controller) => {
          this.pulling = this.pullOnce(controller);
          return this.pulling;
        },
        cancel: () => {
          this.cancelled = true;
        },
      },
      // No read-ahead: bytes are parsed only when the consumer asks.
      { highWaterMark: 0 },
    );
  }

  private async pullOnce(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      const event = await this.nextEvent();
      switch (event.type) {
        case 'chunk':
          if (event.bytes.byteLength === 0) continue;
          controller.enqueue(event.bytes);
          return;
        case 'part-end':
          this.ended = true;
          controller.close();
          return;
        case 'error':
          this.ended = true;
          controller.error(event.error);
          return;
        case 'done':
        case 'part':
          // The parser always ends a part before the next one or the end; be strict anyway.
          this.ended = true;
          controller.error(this.fail('a part ends without a boundary'));
          return;
      }
    }
  }

  /** Waits for an in-flight pull, then discards whatever the consumer left unread. */
  async finish(): Promise<void> {
    await this.pulling?.catch(() => undefined);
    if (this.ended) return;
    if (!this.cancelled) {
      // Unread bytes must never look like a complete file to a late reader.
      this.controller.error(new AttacheError('invalid_body', 'the part was abandoned before it was read'));
    }
    this.ended = true;
    for (;;) {
      const event = await this.nextEvent();
      if (event.type === 'part-end') return;
      if (event.type === 'error') throw event.error;
      if (event.type !== 'chunk') throw this.fail('a part ends without a boundary');
    }
  }

  /** The iteration stopped early: error the stream if a reader still holds it. */
  abandon(): void {
    if (this.ended || this.cancelled) return;
    this.ended = true;
    try {
      // Not an envelope problem (the consumer stopped, e.g. on a size limit): no `failure`.
      this.controller.error(new AttacheError('invalid_body', 'the multipart upload stopped before this part was read'));
    } catch {
      // Already closed or errored by a concurrent pull.
    }
  }
}

/** The part's `Content-Type` in canonical form; none → undefined; malformed → 'invalid' (the upload is refused). */
function partContentType(info: PartInfo): string | undefined | 'invalid' {
  const raw = info.headers['content-type'];
  if (Array.isArray(raw) && raw.length > 1) return 'invalid';
  const header = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (header === undefined || header === '') return undefined;
  return normalizeMediaType(header) ?? 'invalid';
}

function describeMultipartError(error: MultipartError): string {
  switch (error._tag) {
    case 'InvalidBoundary':
      return missingBoundaryError().message;
    case 'BadHeaders':
      return `a multipart part has malformed headers (${error.error.reason})`;
    case 'InvalidDisposition':
      return 'a multipart part has a Content-Disposition without a name';
    case 'EndNotReached':
      return 'the multipart body ends before its closing boundary';
    case 'ReachedLimit':
      return `the multipart body exceeds a limit (${error.limit})`;
  }
}

/**
 * Feeds the parser so that no write ends within two bytes after a boundary.
 * multipasta 0.2.8 recognizes the closing `--` only when both dashes arrive
 * in the same write as the boundary before them; a chunk edge between them
 * makes it parse `--` as part headers and fail a valid body. So up to
 * boundary-length + 2 bytes are held back and any boundary near the end of a
 * write is carried whole into the next one.
 */
class ClosingBoundaryGuard {
  private pending: Uint8Array | undefined;
  private readonly delimiter: Uint8Array | undefined;

  constructor(
    private readonly parser: { write(chunk: Uint8Array): void; end(): void },
    boundary: string | undefined,
  ) {
    this.delimiter = boundary === undefined ? undefined : new TextEncoder().encode(`\r\n--${boundary}`);
  }

  write(chunk: Uint8Array): void {
    if (this.delimiter === undefined) return this.parser.write(chunk);
    const data = this.pending === undefined ? chunk : joinBytes(this.pending, chunk);
    const hold = this.delimiter.length + 2;
    let end = data.length - hold;
    if (end <= 0) {
      this.pending = data;
      return;
    }
    // A delimiter starting here ends at most one byte before `end`, or crosses it.
    const risky = indexOfBytes(data, this.delimiter, Math.max(0, end - this.delimiter.length - 1));
    if (risky !== -1 && risky < end) end = risky;
    this.pending = data.subarray(end);
    if (end > 0) this.parser.write(data.subarray(0, end));
  }

  end(): void {
    if (this.pending !== undefined && this.pending.length > 0) this.parser.write(this.pending);
    this.pending = undefined;
    this.parser.end();
  }
}

function joinBytes(first: Uint8Array, second: Uint8Array): Uint8Array {
  const joined = new Uint8Array(first.length + second.length);
  joined.set(first, 0);
  joined.set(second, first.length);
  return joined;
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.length - needle.length;
  outer: for (let start = from; start <= last; start++) {
    for (let offset = 0; offset < needle.length; offset++) {
      if (haystack[start + offset] !== needle[offset]) continue outer;
    }
    return start;
  }
  return -1;
}
