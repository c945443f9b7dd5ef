// AttacheModule as a Nest module: forRoot, forRootAsync with injected
// configuration, the store injectable into the application's services.
import type { AttachmentStore } from '@attache/core';
import { Controller, Get, Inject, Injectable, Module, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { ATTACHE_STORE, AttacheModule, InjectAttacheStore } from '../src/index.js';
import { acquire, leaseHeaders, memoryStore, release, startApp, type RunningApp } from './helpers.js';

const running: RunningApp[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()));
});

/** The application's own service, using the store through both injection styles. */
@Injectable()
class ReportService {
  constructor(
    @InjectAttacheStore() readonly store: AttachmentStore,
    @Inject(ATTACHE_STORE) readonly sameStore: AttachmentStore,
  ) {}

  async names(key: string): Promise<string[]> {
    return (await this.store.listAttachments({ key })).map((attachment) => attachment.name);
  }
}

@Controller('reports')
class ReportController {
  constructor(@Inject(ReportService) private readonly reports: ReportService) {}

  @Get()
  names(@Query('key') key: string): Promise<string[]> {
    return this.reports.names(key);
  }
}

/** Stands in for an application's configuration module (e.g. @nestjs/config). */
const STORAGE_SETTINGS = Symbol('storage settings');
interface StorageSettings {
  token: string;
}

@Module({ providers: [{ provide: STORAGE_SETTINGS, useValue: { token: 'nest-secret' } satisfies StorageSettings }], exports: [STORAGE_SETTINGS] })
class SettingsModule {}

describe('AttacheModule.forRoot', () => {
  it('makes the store injectable into the application’s services (by token and by decorator)', async () => {
    const store = memoryStore();
    @Module({ imports: [AttacheModule.forRoot({ store, global: true })], providers: [ReportService], controllers: [ReportController] })
    class AppModule {}
    const app = await startApp(AppModule);
    running.push(app);

    const service = app.app.get(ReportService);
    expect(service.store).toBe(store);
    expect(service.sameStore).toBe(store);

    const lease = await acquire(`${app.origin}/v1`, 'reports/q1');
    const upload = await fetch(`${app.origin}/v1/attachments?key=reports/q1&name=summary.txt`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', ...leaseHeaders(lease) },
      body: 'summary',
    });
    expect(upload.status).toBe(200);
    expect((await release(`${app.origin}/v1`, lease)).status).toBe(200);
    expect(await (await fetch(`${app.origin}/reports?key=reports/q1`)).json()).toEqual(['summary.txt']);
    await store.close();
  });

  it('passes the token and the authorize hook to the routes', async () => {
    const store = memoryStore();
    const asked: string[] = [];
    @Module({
      imports: [
        AttacheModule.forRoot({
          store,
          token: 'letmein',
          authorize: ({ action, key }) => {
            asked.push(`${action}:${key ?? ''}`);
            return key !== 'forbidden';
          },
        }),
      ],
    })
    class AppModule {}
    const app = await startApp(AppModule);
    running.push(app);
    const acquireBody = (key: string) => JSON.stringify({ key, ttl_seconds: 30, owner: 't' });

    const anonymous = await fetch(`${app.origin}/v1/acquire`, { method: 'POST', body: acquireBody('a') });
    expect(anonymous.status).toBe(401);
    const headers = { Authorization: 'Bearer letmein', 'Content-Type': 'application/json' };
    expect((await fetch(`${app.origin}/v1/acquire`, { method: 'POST', headers, body: acquireBody('a') })).status).toBe(200);
    expect((await fetch(`${app.origin}/v1/acquire`, { method: 'POST', headers, body: acquireBody('forbidden') })).status).toBe(401);
    expect(asked).toEqual(['acquire:a', 'acquire:forbidden']);
    await store.close();
  });

  it('serves no routes with path: false, and still provides the store', async () => {
    const store = memoryStore();
    @Module({ imports: [AttacheModule.forRoot({ store, path: false, global: true })], providers: [ReportService], controllers: [ReportController] })
    class AppModule {}
    const app = await startApp(AppModule);
    running.push(app);
    expect((await fetch(`${app.origin}/v1/healthz`)).status).toBe(404);
    expect(await (await fetch(`${app.origin}/reports?key=nothing`)).json()).toEqual([]);
    await store.close();
  });

  it('keeps the store to a module that imports it unless global', async () => {
    const store = memoryStore();
    @Module({ providers: [ReportService] })
    class FeatureWithoutImport {}
    @Module({ imports: [AttacheModule.forRoot({ store }), FeatureWithoutImport] })
    class AppModule {}
    await expect(NestFactory.create(AppModule, { logger: false, abortOnError: false })).rejects.toThrow(/ReportService/);
    await store.close();
  });
});

describe('AttacheModule.forRootAsync', () => {
  it('builds the store from injected configuration and closes it when the app shuts down', async () => {
    let built: AttachmentStore | undefined;
    @Module({
      imports: [
        AttacheModule.forRootAsync({
          imports: [SettingsModule],
          inject: [STORAGE_SETTINGS],
          useFactory: (settings: StorageSettings) => {
            built = memoryStore();
            return { store: built, token: settings.token };
          },
        }),
      ],
    })
    class AppModule {}
    const app = await startApp(AppModule);
    expect(built).toBeDefined();
    expect(app.app.get(ATTACHE_STORE)).toBe(built);

    const unauthorized = await fetch(`${app.origin}/v1/attachments?key=k`);
    expect(unauthorized.status).toBe(401);
    const listed = await fetch(`${app.origin}/v1/attachments?key=k`, { headers: { Authorization: 'Bearer nest-secret' } });
    expect(await listed.json()).toEqual({ namespace: 'default', key: 'k', attachments: [] });

    await app.close();
    await expect(built!.listAttachments({ key: 'k' })).rejects.toThrow(/closed/);
  });

  it('awaits an async factory and mounts at the given path', async () => {
    const store = memoryStore();
    @Module({
      imports: [
        AttacheModule.forRootAsync({
          path: 'storage',
          global: true,
          useFactory: async () => {
            await new Promise((resolve) => setTimeout(resolve, 10));
            return { store };
          },
        }),
      ],
      providers: [ReportService],
    })
    class AppModule {}
    const app = await startApp(AppModule);
    running.push(app);
    expect(app.app.get(ReportService).store).toBe(store);
    expect(await (await fetch(`${app.origin}/storage/healthz`)).json()).toEqual({ ok: true });
  });

  it('works in a Nest testing module (providers built before the HTTP adapter exists)', async () => {
    const store = memoryStore();
    const moduleRef = await Test.createTestingModule({
      imports: [AttacheModule.forRootAsync({ useFactory: () => ({ store }) })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: ['error', 'warn'] });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as { port: number };
    try {
      const lease = await acquire(`http://127.0.0.1:${port}/v1`, 'testing/module');
      expect((await release(`http://127.0.0.1:${port}/v1`, lease)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
