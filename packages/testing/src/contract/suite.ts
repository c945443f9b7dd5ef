// The HTTP contract (API.md §2–3), run over real HTTP against any adapter:
// `describeHttpContract('express', mount)`. The suite builds the store; the
// adapter only mounts it at `/v1` on 127.0.0.1. `describeExternalHttpContract`
// runs it against a server in another process.
import { afterAll, beforeAll, describe } from 'vitest';
import { abortScenarios } from './aborts.js';
import { authScenarios } from './auth.js';
import { documentScenarios } from './documents.js';
import { downloadScenarios } from './downloads.js';
import { errorScenarios } from './errors.js';
import type { ContractContext, ContractSupport } from './context.js';
import {
  connectExternalServer,
  startContractServer,
  type ContractPorts,
  type ContractServer,
  type ExternalServer,
  type MountFn,
} from './harness.js';
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
      supports: { clock: true, serverOptions: true, blobTraffic: true, streamedContentLength: true, headContentLength: true, earlyAnswerDelivered: true, hangUpReachesHandler: true, writesInFlight: true, storeInProcess: true, forbiddenMethodsReachMount: true },
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

    allScenarios(context);
  });
}

/**
 * The same contract against a server in another process (another runtime,
 * a deployed build): `connect` starts it, or reaches it, and opens the same
 * store in this process. The scenarios that move the store's clock, mount a
 * second store with other options, or count every byte the blob store pulls
 * are skipped (`ContractSupport`); `server` says where the server's runtime
 * answers differently.
 */
export function describeExternalHttpContract(
  name: string,
  connect: () => Promise<ExternalServer>,
  server: Partial<
    Pick<ContractSupport, 'streamedContentLength' | 'headContentLength' | 'earlyAnswerDelivered' | 'hangUpReachesHandler' | 'writesInFlight' | 'storeInProcess' | 'forbiddenMethodsReachMount'>
  > = {},
): void {
  describe(`HTTP contract: ${name}`, () => {
    let shared: ContractServer | undefined;
    beforeAll(async () => {
      shared = await connectExternalServer(await connect());
    });
    afterAll(async () => {
      await shared?.close();
    });

    const context: ContractContext = {
      supports: {
        clock: false,
        serverOptions: false,
        blobTraffic: false,
        streamedContentLength: true,
        headContentLength: true,
        earlyAnswerDelivered: true,
        hangUpReachesHandler: true,
        writesInFlight: true,
        storeInProcess: true,
        forbiddenMethodsReachMount: true,
        ...server,
      },
      get server() {
        if (shared === undefined) throw new Error('the contract server is not running yet');
        return shared;
      },
      get http() {
        return context.server.http;
      },
      withServer() {
        throw new Error('a server in another process runs with the options it was started with');
      },
    };
    allScenarios(context);
  });
}

function allScenarios(context: ContractContext): void {
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
}
