// Peer: @tus/server 2 with @tus/file-store (no fsync), the reference
// resumable-upload server. Uploads use the creation-with-upload extension
// (one POST carrying the bytes) so one upload is one request, as for the
// others; downloads are GET /files/<id>.
import { createServer } from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';
import { announce, dataDirFromEnv } from './server-process.mjs';

// @tus/server 2.4.5 on Node 20's undici throws ERR_INVALID_STATE when a
// client hangs up right after the last byte of a GET (a closed stream is
// cancelled); the bench keeps the server alive instead of measuring a crash.
process.on('uncaughtException', (error) => {
  if (error?.code === 'ERR_INVALID_STATE') return;
  throw error;
});

const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dataDirFromEnv() }) });
announce(createServer((req, res) => tus.handle(req, res)), 'tus');
