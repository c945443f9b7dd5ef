// The NestJS example: `AttacheModule.forRootAsync` builds the embedded store
// from the app's settings and serves attache's whole HTTP API under /v1; one
// controller of the app's own, POST /avatar, streams a form's file into the
// store with `AttacheFileInterceptor`. Every injection names its token
// (`inject: [...]`, `@Inject(...)`), so nothing relies on emitted decorator
// metadata (esbuild and vitest do not emit it).
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAttachmentStore, type Attachment, type AttachmentStore } from '@attache/core';
import { fsBlobs } from '@attache/fs';
import { AttacheFileInterceptor, AttacheModule, UploadedAttachment } from '@attache/nestjs';
import { sqliteMetadata } from '@attache/sql/sqlite';
import { Controller, Module, Post, UseInterceptors, type DynamicModule, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

export const HOST = '127.0.0.1';
export const DEFAULT_PORT = 3000;
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;

/** What POST /avatar answers. */
export interface AvatarJson {
  id: string;
  ref: string;
  size: number;
  sha256: string;
}

/** The app's own settings, provided under `EXAMPLE_SETTINGS`. */
export interface ExampleSettings {
  /** Holds `attache.db` and `blobs/`; created when missing. */
  dataDir: string;
}

export const EXAMPLE_SETTINGS = Symbol('nestjs-example:settings');

/** The embedded store, as `attache serve` builds it: `<dataDir>/attache.db` (SQLite) and `<dataDir>/blobs/`. */
export async function openStore(dataDir: string): Promise<AttachmentStore> {
  const blobsRoot = join(dataDir, 'blobs');
  await mkdir(blobsRoot, { recursive: true });
  const metadata = sqliteMetadata({ filename: join(dataDir, 'attache.db') });
  try {
    // A broken database stops the start instead of failing the first request.
    await metadata.migrate();
  } catch (error) {
    await metadata.close();
    throw error;
  }
  // A long-running server asks for the sweeper's timer (core starts none by itself).
  // Blobs up to 64 KiB live in the database, as with `attache serve`: a small upload is one write, no file.
  return createAttachmentStore({ metadata, blobs: fsBlobs({ root: blobsRoot }), inlineBlobMaxBytes: 64 * 1024, sweepIntervalSeconds: 30 });
}

@Controller()
export class AvatarController {
  /** Nest answers a POST with 201 by default. */
  @Post('avatar')
  @UseInterceptors(AttacheFileInterceptor({ field: 'file', maxBytes: AVATAR_MAX_BYTES }))
  uploadAvatar(@UploadedAttachment() attachment: Attachment): AvatarJson {
    return { id: attachment.id, ref: `attachment://${attachment.id}`, size: attachment.size, sha256: attachment.sha256 };
  }
}

/** Provides the settings to the modules that import it. */
@Module({})
class SettingsModule {
  static forRoot(settings: ExampleSettings): DynamicModule {
    return {
      module: SettingsModule,
      providers: [{ provide: EXAMPLE_SETTINGS, useValue: settings }],
      exports: [EXAMPLE_SETTINGS],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(settings: ExampleSettings): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AttacheModule.forRootAsync({
          // path: 'v1' is the default. A store made by the factory belongs to
          // the module, which closes it on app.close().
          imports: [SettingsModule.forRoot(settings)],
          inject: [EXAMPLE_SETTINGS],
          useFactory: async ({ dataDir }: ExampleSettings) => ({ store: await openStore(dataDir) }),
        }),
      ],
      controllers: [AvatarController],
    };
  }
}

export interface StartOptions extends ExampleSettings {
  /** Default 3000; 0 lets the OS pick a free port. */
  port?: number;
  /** Nest's log levels (default error, warn and log). */
  logLevels?: LogLevel[];
}

export interface RunningExample {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** The port actually bound. */
  port: number;
  /** Stops the server, then AttacheModule closes the store. */
  close(): Promise<void>;
}

export async function start(options: StartOptions): Promise<RunningExample> {
  const app = await NestFactory.create(AppModule.forRoot({ dataDir: options.dataDir }), {
    logger: options.logLevels ?? ['error', 'warn', 'log'],
    // close() must not wait for idle keep-alive connections.
    forceCloseConnections: true,
    // A failed start rejects (Nest's default would exit the process).
    abortOnError: false,
    // attache's routes read their own bodies; AttacheModule parses JSON and
    // urlencoded bodies of the app's other routes, as Nest would.
    bodyParser: false,
  });
  const server = app.getHttpServer() as Server;
  // Node's default (300 s per request) would cut off large uploads.
  server.requestTimeout = 0;
  try {
    await app.listen(options.port ?? DEFAULT_PORT, HOST);
  } catch (error) {
    await app.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${port}`,
    port,
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
