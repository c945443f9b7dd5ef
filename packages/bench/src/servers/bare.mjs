// The ceiling: a bare Node server that does the least a durable upload
// server can do. POST /upload pipes the body to a new file and fsyncs it
// before answering; GET /files/<id> streams it back with fs.createReadStream.
// No hashing, no metadata, no framework.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { announce, dataDirFromEnv } from './server-process.mjs';

const dir = dataDirFromEnv();
let counter = 0;

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/upload') {
      const id = String(++counter);
      const path = join(dir, id);
      await pipeline(req, createWriteStream(path));
      const handle = await open(path, 'r');
      await handle.sync();
      await handle.close();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
      return;
    }
    const match = /^\/files\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && match) {
      const path = join(dir, match[1]);
      const { size } = await stat(path);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      await pipeline(createReadStream(path), res);
      return;
    }
    res.writeHead(404).end();
  } catch (error) {
    if (!res.headersSent) res.writeHead(500).end(String(error));
    else res.destroy();
  }
});
announce(server, 'bare');
