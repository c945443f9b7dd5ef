// The tus resumable-upload routes (@attache/testing's protocol suite), served
// by AttacheModule on a Nest app created as the README says, over memory ports.
import { createAttachmentStore, memoryBlobs, memoryMetadata } from '@attache/core';
import { describeTusProtocol } from '@attache/testing';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AttacheModule } from '../src/index.js';

describeTusProtocol('nestjs', async (options) => {
  let skew = 0;
  const blobs = memoryBlobs();
  const store = createAttachmentStore({ metadata: memoryMetadata(), blobs, now: () => Date.now() + skew, ...options });
  @Module({ imports: [AttacheModule.forRoot({ store })] })
  class TusAppModule {}
  const app = await NestFactory.create(TusAppModule, { logger: ['error', 'warn'], forceCloseConnections: true, bodyParser: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    store,
    blobs,
    advance: (ms) => void (skew += ms),
    close: async () => {
      await app.close();
      await store.close();
    },
  };
});
