// What every scenario file receives from the suite: its own module, so the
// scenario files and suite.ts (which imports them all) do not import each other.
import type { AttacheHttp, ContractServer, ServerOptions } from './harness.js';

/**
 * What the suite can do to the server beyond HTTP. All of it in-process
 * (`describeHttpContract`); against a server in another process
 * (`describeExternalHttpContract`) the scenarios that need the rest are skipped.
 */
export interface ContractSupport {
  /** `server.advance()` moves the store's clock. */
  clock: boolean;
  /** `withServer()` mounts a second store with its own options, `outage` fails its metadata. */
  serverOptions: boolean;
  /** `blobs.bytesPut` counts every byte `put` pulls (else only the bytes of writes under way). */
  blobTraffic: boolean;
  /**
   * `blobs.bytesPut` and `blobs.putsInFlight` show the server's blob writes
   * while they are under way. Not so for S3 in another process: a body below
   * one part reaches S3 only when it ends. False makes the abort scenarios
   * give the server a moment to take the bytes instead of watching them land.
   */
  writesInFlight: boolean;
  /**
   * A download's body is streamed with the Content-Length the handler set.
   * Bun.serve drops it from a ReadableStream body and sends it chunked
   * (oven-sh/bun#10507); false makes the download scenarios accept no
   * header (or the right one: Bun keeps it for a body already whole).
   */
  streamedContentLength: boolean;
  /**
   * A HEAD answer to a download carries the Content-Length the handler set.
   * Next.js route handlers drop it from every response (HEAD included, see
   * apps/next-example); false makes the HEAD scenario expect no header and
   * the size in X-Attachment-Size alone.
   */
  headContentLength: boolean;
  /**
   * An answer sent before the body was read (413 past max_bytes) reaches a
   * client still sending a large body. Node (through @attache/node) drains a
   * bounded rest first; Bun.serve closes the connection at once, so the
   * client may see a reset instead: false makes that scenario accept either,
   * while still requiring that nothing is kept.
   */
  earlyAnswerDelivered: boolean;
  /**
   * A client that hangs up cancels the handler's request (its signal
   * aborts), so a blocking acquire stops waiting. Not so in miniflare: the
   * hang-up does not reach the Durable Object behind the Worker, so the
   * scenario that proves it is skipped there.
   */
  hangUpReachesHandler: boolean;
  /**
   * `server.store` is the server's store, opened in this process too, to
   * write what HTTP cannot (a malformed stored type). Not so for a server
   * whose metadata lives inside its runtime (a Durable Object's SQLite).
   */
  storeInProcess: boolean;
  /**
   * TRACE and TRACK, which fetch's `Request` refuses, reach the mount, which
   * answers them with a 4xx (Node servers, through @attache/node). Runtimes
   * that own the HTTP server answer them before any handler runs — workerd
   * (miniflare), Bun.serve (it hangs up) and Next.js — so the scenario is
   * skipped there.
   */
  forbiddenMethodsReachMount: boolean;
}

export interface ContractContext {
  readonly supports: ContractSupport;
  /** The server most scenarios share (no auth, default limits); each scenario uses its own keys. */
  readonly server: ContractServer;
  readonly http: AttacheHttp;
  /** Mounts a second, separately configured store for the length of `run`. */
  withServer<T>(options: ServerOptions, run: (server: ContractServer) => Promise<T>): Promise<T>;
}
