// Serves one Express request with core's Web handler: Node request → Web
// Request (@attache/node), `createHandler` → Web Response → Node response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHandler, routeTakesJsonBody, type AttacheHandler } from '@attache/core';
import { sendWebResponse, toWebRequest } from '@attache/node';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { AttacheStoreConfig } from './options.js';
import { ATTACHE_CONFIG } from './tokens.js';

/** Name of the catch-all parameter of attache's route (`<path>/{*attacheRoute}`). */
export const ROUTE_PARAMETER = 'attacheRoute';

/** What the controller receives from `@Req()`: Express's request, as far as it is used here. */
export type ExpressRequest = IncomingMessage & {
  /** The matched Express route; its pattern tells where attache is mounted. */
  route?: { path?: unknown };
  /** Set when a body parser read the request. */
  body?: unknown;
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

  /** An application context without HTTP (a script injecting the store) has no adapter; any other than Express is refused. */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
    if (adapter === undefined) return;
    if (adapter.getType() !== 'express') {
      throw new Error(`AttacheModule serves its routes on @nestjs/platform-express only (this app uses ${adapter.getType()})`);
    }
  }

  private warnedAboutParsedBody = false;

  async serve(req: ExpressRequest, res: ServerResponse): Promise<void> {
    if (req.body !== undefined && !this.warnedAboutParsedBody) {
      this.warnedAboutParsedBody = true;
      this.logger.warn(
        "a body parser read a request to attache's routes before them: lease calls still work (JSON is rebuilt from req.body), " +
          'but JSON-typed and form-encoded uploads are refused and malformed JSON gets Express\'s answer. ' +
          'Create the app with NestFactory.create(AppModule, { bodyParser: false }); AttacheModule parses your other routes.',
      );
    }
    const target = new URL((req as { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://request.invalid');
    const basePath = mountPathOf(req, target.href);
    const request = toWebRequest(req, res, {
      // Only a lease call's body may be rebuilt from what a parser made of it; an upload's bytes must be the client's.
      reuseParsedJson: routeTakesJsonBody(req.method ?? 'GET', target.pathname.slice(basePath.length) || '/'),
    });
    const response = await this.handler.handle(request, { basePath });
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
