import { describe, expect, it } from 'vitest';
import { AttacheError } from '../../src/errors.js';
import { MAX_MULTIPART_PARTS, parseMultipartUploads, type MultipartUploads } from '../../src/http/multipart.js';
import {
  bytes,
  chunksOf,
  concat,
  countingStream,
  multipartBody,
  postRequest,
  readAll,
  splitAt,
  text,
  type FormPart,
} from './helpers.js';

const BOUNDARY = '----attacheBoundary7MA4YWxk';
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

const PARTS: FormPart[] = [
  { name: 'comment', data: 'not a file, ignored' },
  { name: 'file', filename: 'a.txt', contentType: 'text/plain; charset=utf-8', data: 'hello\r\n--not-the-boundary\r\n' },
  { name: 'file', filename: 'b.bin', data: new Uint8Array([0, 13, 10, 45, 45, 255]) },
];

function requestOf(chunks: Uint8Array[], contentType = CONTENT_TYPE): Request {
  return postRequest(countingStream(chunks).stream, { 'Content-Type': contentType });
}

interface Collected {
  name: string;
  contentType: string | undefined;
  data: Uint8Array;
}

async function collect(uploads: MultipartUploads): Promise<Collected[]> {
  const out: Collected[] = [];
  for await (const upload of uploads) {
    out.push({ name: upload.name, contentType: upload.contentType, data: await readAll(upload.body) });
  }
  return out;
}

const EXPECTED: Collected[] = [
  { name: 'a.txt', contentType: 'text/plain; charset=utf-8', data: bytes('hello\r\n--not-the-boundary\r\n') },
  { name: 'b.bin', contentType: undefined, data: new Uint8Array([0, 13, 10, 45, 45, 255]) },
];

describe('parseMultipartUploads', () => {
  it('yields each file part with its filename, type and bytes, skipping plain fields', async () => {
    const body = multipartBody(BOUNDARY, PARTS);
    expect(await collect(parseMultipartUploads(requestOf([body])))).toEqual(EXPECTED);
  });

  it('gives the same parts whatever single chunk boundary splits the body', async () => {
    const body = multipartBody(BOUNDARY, PARTS);
    for (let offset = 1; offset < body.byteLength; offset++) {
      const result = await collect(parseMultipartUploads(requestOf(splitAt(body, [offset]))));
      expect(result, `split at ${offset}`).toEqual(EXPECTED);
    }
  });

  it('gives the same parts when the body arrives in chunks of 1, 2, 3, 5, 7 and 13 bytes', async () => {
    const body = multipartBody(BOUNDARY, PARTS);
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const result = await collect(parseMultipartUploads(requestOf(chunksOf(body, size))));
      expect(result, `chunks of ${size}`).toEqual(EXPECTED);
    }
  });

  it('splits a boundary across two chunks at every position inside it', async () => {
    const body = multipartBody(BOUNDARY, PARTS);
    const second = text(body).indexOf(`\r\n--${BOUNDARY}`, text(body).indexOf('a.txt'));
    for (let inside = 1; inside < BOUNDARY.length + 4; inside++) {
      const result = await collect(parseMultipartUploads(requestOf(splitAt(body, [second + inside]))));
      expect(result).toEqual(EXPECTED);
    }
  });

  it('decodes an RFC 5987 filename* parameter', async () => {
    const body = multipartBody(BOUNDARY, [{ name: 'f', filenameStar: "UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.txt", data: 'x' }]);
    const [upload] = await collect(parseMultipartUploads(requestOf([body])));
    expect(upload?.name).toBe('résumé €.txt');
  });

  it('treats a part with an empty filename (an empty file input) as no file', async () => {
    const body = multipartBody(BOUNDARY, [
      { name: 'empty', filename: '', contentType: 'application/octet-stream', data: '' },
      { name: 'f', filename: 'real.txt', data: 'data' },
    ]);
    const result = await collect(parseMultipartUploads(requestOf([body])));
    expect(result.map((upload) => upload.name)).toEqual(['real.txt']);
  });

  it('yields nothing for a well-formed body without a file part (storing it is what refuses it)', async () => {
    const uploads = parseMultipartUploads(requestOf([multipartBody(BOUNDARY, [{ name: 'only', data: 'field' }])]));
    expect(await collect(uploads)).toEqual([]);
    expect(uploads.failure).toBeUndefined();
  });

  it('rejects a Content-Type without boundary, an empty body and a body without the boundary', async () => {
    const body = multipartBody(BOUNDARY, PARTS);
    for (const request of [
      requestOf([body], 'multipart/form-data'),
      postRequest(null, { 'Content-Type': CONTENT_TYPE }),
      requestOf([bytes('just some bytes, no boundary here')]),
    ]) {
      const uploads = parseMultipartUploads(request);
      await expect(collect(uploads)).rejects.toBeInstanceOf(AttacheError);
      expect(uploads.failure?.code).toBe('invalid_body');
    }
  });

  it(`rejects a form with more than ${MAX_MULTIPART_PARTS} parts with invalid_body`, async () => {
    const fields = Array.from({ length: MAX_MULTIPART_PARTS + 1 }, (_, index) => ({ name: `f${index}`, data: 'x' }));
    const atLimit = parseMultipartUploads(
      requestOf([multipartBody(BOUNDARY, [...fields.slice(0, MAX_MULTIPART_PARTS - 1), { name: 'file', filename: 'a.txt', data: 'ok' }])]),
    );
    expect((await collect(atLimit)).map((part) => part.name)).toEqual(['a.txt']);
    const over = parseMultipartUploads(requestOf([multipartBody(BOUNDARY, [...fields, { name: 'file', filename: 'a.txt', data: 'x' }])]));
    await expect(collect(over)).rejects.toMatchObject({ code: 'invalid_body' });
  });

  it('rejects malformed part headers with invalid_body', async () => {
    const body = bytes(`--${BOUNDARY}\r\nContent-Disposition form-data; name="x"\r\n\r\ndata\r\n--${BOUNDARY}--\r\n`);
    const uploads = parseMultipartUploads(requestOf([body]));
    await expect(collect(uploads)).rejects.toMatchObject({ code: 'invalid_body' });
  });

  it('errors (never closes) the part body when the request is cut anywhere inside it, or fails the iteration after it', async () => {
    const body = multipartBody(BOUNDARY, PARTS, { close: false });
    const full = text(body);
    const aStart = full.indexOf('hello');
    const aEnd = aStart + 'hello\r\n--not-the-boundary\r\n'.length;
    for (let cut = 1; cut < body.byteLength; cut++) {
      const uploads = parseMultipartUploads(requestOf([body.slice(0, cut)]));
      const seen: { name: string; outcome: 'closed' | 'errored'; data?: Uint8Array }[] = [];
      let iterationError: unknown;
      try {
        for await (const upload of uploads) {
          try {
            seen.push({ name: upload.name, outcome: 'closed', data: await readAll(upload.body) });
          } catch (error) {
            expect(error).toMatchObject({ code: 'invalid_body' });
            seen.push({ name: upload.name, outcome: 'errored' });
          }
        }
      } catch (error) {
        iterationError = error;
      }
      expect(iterationError, `cut at ${cut}`).toMatchObject({ code: 'invalid_body' });
      expect(uploads.failure?.code).toBe('invalid_body');
      // A body that closed normally holds exactly its part's bytes: nothing truncated passes as complete.
      for (const part of seen) {
        if (part.outcome === 'closed') expect(part.data).toEqual(EXPECTED.find((e) => e.name === part.name)?.data);
      }
      if (cut > aStart && cut <= aEnd) expect(seen.find((part) => part.name === 'a.txt')?.outcome, `cut at ${cut}`).toBe('errored');
    }
  });

  it('streams a 20 MiB part to a slow consumer without reading the request far ahead', async () => {
    const chunkSize = 64 * 1024;
    const fileSize = 20 * 1024 * 1024;
    const payload = new Uint8Array(fileSize);
    for (let index = 0; index < fileSize; index += 4099) payload[index] = index % 251;
    const head = bytes(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n`);
    const tail = bytes(`\r\n--${BOUNDARY}--\r\n`);
    const chunks = [head, ...chunksOf(payload, chunkSize), tail];
    const source = countingStream(chunks);
    const uploads = parseMultipartUploads(postRequest(source.stream, { 'Content-Type': CONTENT_TYPE }));

    let consumedBytes = 0;
    let maxAheadChunks = 0;
    for await (const upload of uploads) {
      const reader = upload.body.getReader();
      let checksum = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let index = 0; index < value.byteLength; index++) {
          if ((consumedBytes + index) % 4099 === 0) checksum += value[index]!;
        }
        consumedBytes += value.byteLength;
        // Chunks the source handed out beyond what the consumer has taken.
        const consumedChunks = 1 + Math.floor(consumedBytes / chunkSize);
        maxAheadChunks = Math.max(maxAheadChunks, source.pulled() - consumedChunks);
        await new Promise((resolve) => setTimeout(resolve, 0)); // a slow consumer
      }
      expect(checksum).toBe(payload.reduce((sum, byte, index) => (index % 4099 === 0 ? sum + byte : sum), 0));
    }
    expect(consumedBytes).toBe(fileSize);
    expect(maxAheadChunks).toBeLessThanOrEqual(2);
  });

  it('discards a part the consumer left unread and errors its stream, then yields the next part', async () => {
    const uploads = parseMultipartUploads(requestOf(chunksOf(multipartBody(BOUNDARY, PARTS), 4)));
    const skipped: ReadableStream<Uint8Array>[] = [];
    const read: Collected[] = [];
    for await (const upload of uploads) {
      if (upload.name === 'a.txt') skipped.push(upload.body);
      else read.push({ name: upload.name, contentType: upload.contentType, data: await readAll(upload.body) });
    }
    expect(read).toEqual([EXPECTED[1]]);
    await expect(readAll(skipped[0]!)).rejects.toMatchObject({ code: 'invalid_body' });
    expect(uploads.failure).toBeUndefined();
  });

  it('moves on after the consumer cancels a part body', async () => {
    const uploads = parseMultipartUploads(requestOf(chunksOf(multipartBody(BOUNDARY, PARTS), 5)));
    const names: string[] = [];
    let second: Uint8Array | undefined;
    for await (const upload of uploads) {
      names.push(upload.name);
      if (upload.name === 'a.txt') {
        const reader = upload.body.getReader();
        await reader.read();
        await reader.cancel();
      } else {
        second = await readAll(upload.body);
      }
    }
    expect(names).toEqual(['a.txt', 'b.bin']);
    expect(second).toEqual(EXPECTED[1]!.data);
  });

  it('errors the open part body when the consumer stops iterating, without blaming the envelope', async () => {
    const uploads = parseMultipartUploads(requestOf(chunksOf(multipartBody(BOUNDARY, PARTS), 3)));
    let body: ReadableStream<Uint8Array> | undefined;
    for await (const upload of uploads) {
      body = upload.body;
      break;
    }
    await expect(readAll(body!)).rejects.toMatchObject({ code: 'invalid_body' });
    expect(uploads.failure).toBeUndefined();
  });

  it('passes a request body read error to the part body', async () => {
    const broken = new Error('connection reset');
    let sent = false;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent) return controller.error(broken);
          sent = true;
          controller.enqueue(bytes(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n${'partial '.repeat(20)}`));
        },
      },
      { highWaterMark: 0 },
    );
    const uploads = parseMultipartUploads(postRequest(stream, { 'Content-Type': CONTENT_TYPE }));
    for await (const upload of uploads) {
      await expect(readAll(upload.body)).rejects.toBe(broken);
      break;
    }
    expect(uploads.failure).toBeUndefined();
  });

  it('ignores the epilogue after the closing boundary', async () => {
    const body = concat([multipartBody(BOUNDARY, PARTS), bytes('epilogue garbage\r\n--x\r\n')]);
    expect(await collect(parseMultipartUploads(requestOf([body])))).toEqual(EXPECTED);
  });
});
