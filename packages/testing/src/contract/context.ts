// What every scenario file receives from the suite: its own module, so the
// scenario files and suite.ts (which imports them all) do not import each other.
import type { AttacheHttp, ContractServer, ServerOptions } from './harness.js';

export interface ContractContext {
  /** The server most scenarios share (no auth, default limits); each scenario uses its own keys. */
  readonly server: ContractServer;
  readonly http: AttacheHttp;
  /** Mounts a second, separately configured store for the length of `run`. */
  withServer<T>(options: ServerOptions, run: (server: ContractServer) => Promise<T>): Promise<T>;
}
