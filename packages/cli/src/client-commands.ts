// `attache acquire | keepalive | release | attachments … | put | get`: the
// client side of the CLI, over @attache/client, modelled on lockd's: the
// lease travels between commands as environment variables that `acquire`
// prints as shell `export` lines (`eval "$(attache acquire --key k --ttl 30)"`).
// Arguments are parsed with Node's built-in `util.parseArgs`, as `serve` is.
import { createWriteStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createClient, isAttacheError, type AttacheClient, type ClientLease } from '@attache/client';
import type { Attachment, AttachmentRef, AttachmentSelector } from '@attache/core';
import { nodeFetch } from '@attache/node';
import { ConfigError, type Environment } from './config.js';
import { transferProgress, type TransferProgress } from './progress.js';

export const CLIENT_USAGE = `Client commands (server from --server or ATTACHE_URL, e.g. http://127.0.0.1:3000/v1; token from ATTACHE_TOKEN):
  eval "$(attache acquire --key K --ttl SECONDS [--namespace NS] [--owner O] [--block SECONDS])"
  attache keepalive [--ttl SECONDS]
  attache release [--rollback]
  attache attachments put --name N --file F [--content-type T] [--max-bytes B] [--prevent-overwrite]
  attache attachments list [--key K] [--public]
  attache attachments get (--name N | --id I) [-o FILE] [--public]
  attache attachments delete (--name N | --id I)
  attache attachments delete-all
  attache put FILE [--content-type T]          (a document; prints its ref)
  attache get REF -o FILE                      (stdout without -o)
Every command takes --json (one JSON object on stdout) and --help.
put and get draw a progress bar on stderr when it is a terminal.
Lease commands read ATTACHE_LEASE_ID, ATTACHE_TXN_ID, ATTACHE_FENCING_TOKEN,
ATTACHE_KEY and ATTACHE_NAMESPACE, as printed by acquire.
Exit codes: 0 ok; 1 network or server failure; 2 usage; 3 invalid input
(400, 413, 416); 4 unauthorized (401); 5 lease refused or conflict (403,
409); 6 not found (404); 7 unavailable (503).
`;

interface Io {
  env: Environment;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const COMMON = {
  server: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends ParseArgsConfig['options']>(argv: readonly string[], options: O, positionals = false) {
  try {
    return parseArgs({ args: [...argv], strict: true, allowPositionals: positionals, options: { ...COMMON, ...options } });
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error), CLIENT_USAGE);
  }
}

function clientOf(server: string | undefined, env: Environment): AttacheClient {
  const baseUrl = server ?? env.ATTACHE_URL;
  if (!baseUrl) throw new ConfigError('no server: pass --server URL or set ATTACHE_URL (e.g. http://127.0.0.1:3000/v1)', CLIENT_USAGE);
  // node:http, not the global fetch: Node 20's fetch holds a streamed upload in memory and loses a server's early 413.
  return createClient({ baseUrl, fetch: nodeFetch, ...(env.ATTACHE_TOKEN ? { token: env.ATTACHE_TOKEN } : {}) });
}

function need(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new ConfigError(`${what} is required`, CLIENT_USAGE);
  return value;
}

function number(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new ConfigError(`${what} must be a number, not "${value}"`, CLIENT_USAGE);
  return parsed;
}

/** The lease that `acquire` exported, rebuilt from the environment. */
async function leaseFromEnv(client: AttacheClient, env: Environment): Promise<ClientLease> {
  const fencingToken = Number(need(env.ATTACHE_FENCING_TOKEN, 'ATTACHE_FENCING_TOKEN (run eval "$(attache acquire …)" first)'));
  return client.resume({
    leaseId: need(env.ATTACHE_LEASE_ID, 'ATTACHE_LEASE_ID (run eval "$(attache acquire …)" first)'),
    txnId: need(env.ATTACHE_TXN_ID, 'ATTACHE_TXN_ID'),
    fencingToken,
    key: need(env.ATTACHE_KEY, 'ATTACHE_KEY'),
    namespace: env.ATTACHE_NAMESPACE || 'default',
  });
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function attachmentJson(attachment: Attachment): Record<string, unknown> {
  return { ...attachment, createdAt: attachment.createdAt.toISOString(), updatedAt: attachment.updatedAt.toISOString() };
}

function selectorOf(values: { name?: string | undefined; id?: string | undefined }): AttachmentSelector {
  if (values.name !== undefined && values.id !== undefined) throw new ConfigError('give --name or --id, not both', CLIENT_USAGE);
  if (values.name !== undefined) return { name: values.name };
  if (values.id !== undefined) return { id: values.id };
  throw new ConfigError('--name or --id is required', CLIENT_USAGE);
}

async function writeBody(body: ReadableStream<Uint8Array>, output: string | undefined, io: Io, progress: TransferProgress): Promise<void> {
  const target = (output === undefined || output === '-' ? io.stdout : createWriteStream(output)) as Writable;
  // Chunk by chunk, waiting for 'drain': the file is never held in memory
  // (Writable.toWeb let RSS grow with the file on Node 20).
  const reader = body.getReader();
  let written = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      written += value.byteLength;
      progress.update(written);
      if (!target.write(value)) await once(target, 'drain');
    }
  } finally {
    reader.releaseLock();
    progress.stop();
  }
  if (target !== io.stdout) {
    target.end();
    await once(target, 'finish');
  }
}

/** The file as a pull stream: read only as fast as the upload sends (Readable.toWeb read ahead without bound on Node 20). */
function fileBody(file: string): { body: ReadableStream<Uint8Array>; size: number } {
  const size = statSync(file).size;
  const handle = open(file, 'r');
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const buffer = new Uint8Array(256 * 1024);
        const { bytesRead } = await (await handle).read(buffer, 0, buffer.byteLength, null);
        if (bytesRead === 0) {
          await (await handle).close();
          controller.close();
        } else {
          controller.enqueue(buffer.subarray(0, bytesRead));
        }
      },
      async cancel() {
        await (await handle).close();
      },
    },
    { highWaterMark: 0 },
  );
  return { body, size };
}

/** Runs one client command; returns the exit code. */
export async function runClientCommand(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  const say = (json: boolean, value: unknown, text: string) => io.stdout.write(json ? `${JSON.stringify(value)}\n` : text);
  try {
    switch (command) {
      case 'acquire': {
        const { values } = parse(rest, {
          key: { type: 'string' },
          ttl: { type: 'string' },
          namespace: { type: 'string' },
          owner: { type: 'string' },
          block: { type: 'string' },
        });
        if (values.help) return help(io);
        const client = clientOf(values.server, io.env);
        const lease = await client.acquire({
          key: need(values.key, '--key'),
          ttlSeconds: number(need(values.ttl, '--ttl'), '--ttl')!,
          owner: values.owner ?? `attache-cli@${process.pid}`,
          ...(values.namespace ? { namespace: values.namespace } : {}),
          ...(values.block !== undefined ? { blockSeconds: number(values.block, '--block')! } : {}),
        });
        const exports = {
          ATTACHE_LEASE_ID: lease.leaseId,
          ATTACHE_TXN_ID: lease.txnId,
          ATTACHE_FENCING_TOKEN: String(lease.fencingToken),
          ATTACHE_KEY: lease.key,
          ATTACHE_NAMESPACE: lease.namespace,
        };
        say(
          values.json === true,
          { ...exports, expires_at: lease.expiresAt.toISOString() },
          Object.entries(exports).map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join(''),
        );
        return 0;
      }
      case 'keepalive': {
        const { values } = parse(rest, { ttl: { type: 'string' } });
        if (values.help) return help(io);
        const lease = await leaseFromEnv(clientOf(values.server, io.env), io.env);
        const info = await lease.keepalive({ ttlSeconds: number(values.ttl ?? '30', '--ttl')! });
        say(values.json === true, { expires_at: info.expiresAt.toISOString(), fencing_token: info.fencingToken }, `lease extended until ${info.expiresAt.toISOString()}\n`);
        return 0;
      }
      case 'release': {
        const { values } = parse(rest, { rollback: { type: 'boolean' } });
        if (values.help) return help(io);
        const lease = await leaseFromEnv(clientOf(values.server, io.env), io.env);
        await lease.release({ rollback: values.rollback === true });
        say(values.json === true, { released: true, rollback: values.rollback === true }, values.rollback ? 'rolled back\n' : 'committed\n');
        return 0;
      }
      case 'attachments':
        return await runAttachments(rest, io, say);
      case 'put': {
        const { values, positionals } = parse(rest, { 'content-type': { type: 'string' }, name: { type: 'string' } }, true);
        if (values.help) return help(io);
        const file = need(positionals[0], 'FILE');
        const { body, size } = fileBody(file);
        const name = values.name ?? basename(file);
        const progress = transferProgress(io.stderr, `put ${name}`, size);
        const document = await clientOf(values.server, io.env)
          .upload(
            { name, body, sizeBytes: size, ...(values['content-type'] ? { contentType: values['content-type'] } : {}) },
            { onProgress: ({ sentBytes }) => progress.update(sentBytes) },
          )
          .finally(() => progress.stop());
        say(values.json === true, { ref: `attachment://${document.id}`, attachment: attachmentJson(document) }, `attachment://${document.id}\n`);
        return 0;
      }
      case 'get': {
        const { values, positionals } = parse(rest, { output: { type: 'string', short: 'o' } }, true);
        if (values.help) return help(io);
        const ref = need(positionals[0], 'REF') as AttachmentRef;
        const response = await clientOf(values.server, io.env).get(ref);
        // The seed get's header carries no size: a byte counter, not a bar.
        await writeBody(response.body, values.output, io, transferProgress(io.stderr, `get ${response.header.attachmentId}`, undefined));
        if (values.json === true && values.output !== undefined) io.stdout.write(`${JSON.stringify({ header: response.header })}\n`);
        return 0;
      }
      default:
        throw new ConfigError(`unknown command "${command}"`, CLIENT_USAGE);
    }
  } catch (error) {
    return failure(error, io);
  }
}

async function runAttachments(argv: readonly string[], io: Io, say: (json: boolean, value: unknown, text: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'put': {
      const { values } = parse(rest, {
        name: { type: 'string' },
        file: { type: 'string' },
        'content-type': { type: 'string' },
        'max-bytes': { type: 'string' },
        'prevent-overwrite': { type: 'boolean' },
      });
      if (values.help) return help(io);
      const name = need(values.name, '--name');
      const { body, size } = fileBody(need(values.file, '--file'));
      const lease = await leaseFromEnv(clientOf(values.server, io.env), io.env);
      const progress = transferProgress(io.stderr, `put ${name}`, size);
      const result = await lease.attach({
        name,
        body,
        sizeBytes: size,
        onProgress: ({ sentBytes }) => progress.update(sentBytes),
        ...(values['content-type'] ? { contentType: values['content-type'] } : {}),
        ...(values['max-bytes'] !== undefined ? { maxBytes: number(values['max-bytes'], '--max-bytes')! } : {}),
        ...(values['prevent-overwrite'] ? { preventOverwrite: true } : {}),
      }).finally(() => progress.stop());
      say(values.json === true, { attachment: attachmentJson(result.attachment), noop: result.noop }, `${result.noop ? 'kept' : 'staged'} ${result.attachment.name} ${result.attachment.id} (${result.attachment.size} bytes)\n`);
      return 0;
    }
    case 'list': {
      const { values } = parse(rest, { key: { type: 'string' }, namespace: { type: 'string' }, public: { type: 'boolean' } });
      if (values.help) return help(io);
      const client = clientOf(values.server, io.env);
      const attachments =
        values.public === true
          ? await client.listAttachments({ key: need(values.key ?? io.env.ATTACHE_KEY, '--key'), ...(values.namespace ?? io.env.ATTACHE_NAMESPACE ? { namespace: values.namespace ?? io.env.ATTACHE_NAMESPACE! } : {}) })
          : await (await leaseFromEnv(client, io.env)).list();
      say(
        values.json === true,
        { attachments: attachments.map(attachmentJson) },
        attachments.map((a) => `${a.name}\t${a.size}\t${a.contentType}\t${a.id}\n`).join(''),
      );
      return 0;
    }
    case 'get': {
      const { values } = parse(rest, {
        name: { type: 'string' },
        id: { type: 'string' },
        key: { type: 'string' },
        namespace: { type: 'string' },
        output: { type: 'string', short: 'o' },
        public: { type: 'boolean' },
      });
      if (values.help) return help(io);
      const selector = selectorOf(values);
      const client = clientOf(values.server, io.env);
      const downloaded =
        values.public === true
          ? await client.getAttachment({
              ...selector,
              ...(values.key ?? io.env.ATTACHE_KEY ? { key: values.key ?? io.env.ATTACHE_KEY! } : {}),
              ...(values.namespace ?? io.env.ATTACHE_NAMESPACE ? { namespace: values.namespace ?? io.env.ATTACHE_NAMESPACE! } : {}),
            })
          : await (await leaseFromEnv(client, io.env)).get(selector);
      await writeBody(downloaded.body, values.output, io, transferProgress(io.stderr, `get ${downloaded.attachment.name}`, downloaded.attachment.size));
      if (values.json === true && values.output !== undefined) io.stdout.write(`${JSON.stringify({ attachment: downloaded.attachment })}\n`);
      return 0;
    }
    case 'delete': {
      const { values } = parse(rest, { name: { type: 'string' }, id: { type: 'string' } });
      if (values.help) return help(io);
      const lease = await leaseFromEnv(clientOf(values.server, io.env), io.env);
      const result = await lease.delete(selectorOf(values));
      say(values.json === true, result, result.deleted ? 'deleted (staged)\n' : 'nothing to delete\n');
      return 0;
    }
    case 'delete-all': {
      const { values } = parse(rest, {});
      if (values.help) return help(io);
      const lease = await leaseFromEnv(clientOf(values.server, io.env), io.env);
      const result = await lease.deleteAll();
      say(values.json === true, result, `deleted ${result.deleted} (staged)\n`);
      return 0;
    }
    default:
      throw new ConfigError(`unknown attachments command "${sub ?? ''}" (put, list, get, delete, delete-all)`, CLIENT_USAGE);
  }
}

function help(io: Io): number {
  io.stdout.write(CLIENT_USAGE);
  return 0;
}

const EXIT_BY_STATUS: Record<number, number> = { 400: 3, 413: 3, 416: 3, 401: 4, 403: 5, 409: 5, 404: 6, 503: 7 };

/** One clear line on stderr, and the exit code of the error's class. */
function failure(error: unknown, io: Io): number {
  if (error instanceof ConfigError) {
    io.stderr.write(`attache: ${error.message}\n`);
    return error.exitCode;
  }
  if (isAttacheError(error)) {
    io.stderr.write(`attache: ${error.code}: ${error.message}\n`);
    return EXIT_BY_STATUS[error.status] ?? 1;
  }
  const message = error instanceof Error ? `${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ''}` : String(error);
  io.stderr.write(`attache: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  return 1;
}
