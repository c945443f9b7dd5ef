// The HTTP contract (API.md §2–3), run over real HTTP against any adapter:
// `describeHttpContract('express', mount)`. The suite builds the store; the
// adapter only mounts it at `/v1` on 127.0.0.1.
import { afterAll, beforeAll, describe } from 'vitest';
import { abortScenarios } from './aborts.js';
import { authScenarios } from './auth.js';
import { documentScenarios } from './documents.js';
import { downloadScenarios } from './downloads.js';
import { errorScenarios } from './errors.js';
import type { ContractContext } from './context.js';
import { startContractServer, type ContractPorts, type ContractServer, type MountFn } from './harness.js';
import { leaseScenarios } from './leases.js';
import { lifecycleScenarios } from './lifecycle.js';
import { mediaTypeScenarios } from './media-types.js';
import { multipartScenarios } from './multipart.js';
import { queryScenarios } from './queries.js';
import { routingScenarios } from './routing.js';
import { uploadScenarios } from './uploads.js';

/** `ports`: the storage under every server the suite starts (default: memory). */
export function describeHttpContract(name: string, mount: MountFn, ports?: ContractPorts): void {
  describe(`HTTP contract: ${name}`, () => {
    let shared: ContractServer | undefined;
    beforeAll(async () => {
      shared = await startContractServer(mount, {}, ports);
    });
    afterAll(async () => {
      await shared?.close();
    });

    const context: ContractContext = {
      get server() {
        if (shared === undefined) throw new Error('the contract server is not running yet');
        return shared;
      },
      get http() {
        return context.server.http;
      },
      async withServer(options, run) {
        const server = await startContractServer(mount, options, ports);
        try {
          return await run(server);
        } finally {
          await server.close();
        }
      },
    };

    lifecycleScenarios(context);
    leaseScenarios(context);
    uploadScenarios(context);
    multipartScenarios(context);
    documentScenarios(context);
    downloadScenarios(context);
    mediaTypeScenarios(context);
    abortScenarios(context);
    errorScenarios(context);
    authScenarios(context);
    routingScenarios(context);
    queryScenarios(context);
  });
}
