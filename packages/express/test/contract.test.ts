// The HTTP contract on Express 5, with `express.json()` mounted app-wide
// before attache, as most Express apps have it.
import { describeHttpContract } from '@attache/testing';
import express from 'express';
import { attache } from '../src/index.js';
import { listenApp } from './listen.js';

describeHttpContract('express', async (options) => {
  const app = express();
  app.use(express.json());
  const files = attache(options);
  app.use('/v1', files, files.errors);
  const running = await listenApp(app);
  return { baseUrl: `${running.url}/v1`, close: running.close };
});
