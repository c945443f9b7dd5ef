// Serves one Express request with core's Web handler: Node request → Web
// Request (@attache/node), `createHandler` → Web Response → Node response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHandler, type AttacheHandler } from '@attache/core';
import { sendWebResponse, toWebRequest } from '@attache/node';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { bypassBodyParsers } from './body-parser-bypass.js';
import type { AttacheStoreConfig } from './options.js';
import { ATTACHE_CONFIG } from './tokens.js';

/** Name of the catch-all parameter of attache's route (`<path>/{*attacheRoute}`). */
export const ROUTE_PARAMETER = 'attacheRoute';

/** What the controller receives from `@Req()`: Express's request, as far as it is used here. */
export type ExpressRequest = IncomingMessage & {
  /** The matched Express route; its pattern tells where attache is mounted. */
  route?: { path?: unknown };
};

@Injectable()
export class AttacheHttp implements OnModuleInit {
  private readonly logger = new Logger('AttacheModule');
  private readonly handler: AttacheHandler;

  constructor(
    @Inject(ATTACHE_CONFIG) config: AttacheStoreConfig,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {
    // The config is the handler's options (store, authorize, token, limits);
    // the base path is decided per request from the matched route.
    this.handler = createHandler(config);
  }

  /** Runs once the routes are registered: keeps the body parsers off them. */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
    // An application context without HTTP (e.g. a script injecting the store).
    if (adapter === undefined) return;
    if (adapter.getType() !== 'express') {
      throw new Error(`AttacheModule serves its routes on @nestjs/platform-express only (this app uses ${adapter.getType()})`);
    }
    const { routes } = bypassBodyParsers(adapter.getInstance(), ROUTE_PARAMETER);
    if (routes === 0) {
      this.logger.warn(
        'attache routes not found in the Express router, so the body parsers still run on them: lease calls work ' +
          '(JSON is rebuilt from req.body), but JSON-typed and form-encoded uploads fail. Create the app with { bodyParser: false }.',
      );
    }
  }

  async serve(req: ExpressRequest, res: ServerResponse): Promise<void> {
    const request = toWebRequest(req, res);
    const response = await this.handler.handle(request, { basePath: mountPathOf(req, request.url) });
    // Resolves as well when the client hangs up mid-download (the body is cancelled).
    await sendWebResponse(res, response, request.signal);
  }
}

/**
 * Where attache is mounted for this request, as core's `basePath`: the
 * request path cut to as many segments as the route's prefix has. The route
 * pattern includes Nest's global prefix and any parameters in it
 * (`/api/:tenant/v1/{*attacheRoute}` → `/api/acme/v1`).
 */
export function mountPathOf(req: ExpressRequest, url: string): string {
  const pattern = req.route?.path;
  const suffix = `/{*${ROUTE_PARAMETER}}`;
  const prefix = typeof pattern === 'string' ? (pattern.endsWith(suffix) ? pattern.slice(0, -suffix.length) : pattern) : '';
  const depth = prefix.split('/').filter((segment) => segment !== '').length;
  return new URL(url).pathname.split('/').slice(0, depth + 1).join('/');
}
