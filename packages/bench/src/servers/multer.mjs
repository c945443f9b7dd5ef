// Peer: Express 5 + multer 2 disk storage, the usual way a Node app takes a
// file upload. POST /upload takes a multipart form with one `file` field.
// multer does not fsync, hash or keep metadata, so it does less than attache
// promises; it is the bar the issue asks attache to reach for small files.
import express from 'express';
import multer from 'multer';
import { announce, dataDirFromEnv } from './server-process.mjs';

const upload = multer({ storage: multer.diskStorage({ destination: dataDirFromEnv() }) });
const app = express();
app.post('/upload', upload.single('file'), (req, res) => {
  res.json({ id: req.file?.filename });
});
announce(app.listen(0, '127.0.0.1'), 'multer', { listening: false });
