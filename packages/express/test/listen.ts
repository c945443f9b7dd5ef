// Runs an Express app on 127.0.0.1 for the tests.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

export async function listenApp(app: Express): Promise<RunningApp> {
  const server = await new Promise<Server>((resolve) => {
    const started = app.listen(0, '127.0.0.1', () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets of the test's fetch client would hold close() open.
      server.closeAllConnections();
      await closed;
    },
  };
}
