// The shared HTTP contract (API.md §2–3), served by AttacheModule on a Nest
// app created as the README says ({ bodyParser: false }; the module parses
// the app's other routes).
import { describeHttpContract, type MountFn } from '@attache/testing';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AttacheModule } from '../src/index.js';

const mountNest: MountFn = async ({ store, authorize, token }) => {
  @Module({
    imports: [
      AttacheModule.forRoot({
        store,
        ...(authorize === undefined ? {} : { authorize }),
        ...(token === undefined ? {} : { token }),
      }),
    ],
  })
  class ContractAppModule {}

  // forceCloseConnections: `close()` must drop open connections, not wait for them.
  const app = await NestFactory.create(ContractAppModule, {
    logger: ['error', 'warn'],
    forceCloseConnections: true,
    bodyParser: false,
  });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { baseUrl: `http://127.0.0.1:${port}/v1`, close: () => app.close() };
};

describeHttpContract('nestjs', mountNest);
