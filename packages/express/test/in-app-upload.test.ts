// The shared in-app upload specification on Express: multer parses the form,
// attacheStorage stores through core's entry, attacheErrorHandler answers.
import { describeInAppUploads } from '@attache/testing';
import express, { type RequestHandler } from 'express';
import multer from 'multer';
import { attacheErrorHandler, attacheUpload, leaseFromHeaders, type AttacheUploadRequest } from '../src/index.js';
import { listenApp } from './listen.js';

describeInAppUploads('express (multer + attacheStorage)', async ({ store, field, maxBytes }) => {
  const app = express();
  app.use(express.json());
  const upload = attacheUpload(multer, { store, field, maxFiles: 1, maxBytes, lease: leaseFromHeaders });
  const answer: RequestHandler = (req, res) => {
    res.status(201).json({ id: (req as unknown as AttacheUploadRequest).file!.id });
  };
  app.post('/upload', upload, answer, attacheErrorHandler);
  const running = await listenApp(app);
  return { uploadUrl: `${running.url}/upload`, close: running.close };
});
