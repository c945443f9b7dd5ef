// `AttacheModule.forRoot` / `forRootAsync`: provides the store under
// `ATTACHE_STORE` and mounts the HTTP contract at `/<path>` (default `/v1`).
import {
  Inject,
  Injectable,
  Module,
  RequestMethod,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationShutdown,
  type Provider,
  type Type,
} from '@nestjs/common';
import { createAttacheController } from './attache-controller.js';
import { AttacheHttp } from './attache-http.js';
import { flagAttacheRequest, parsersSkippingAttache } from './body-parsers.js';
import type { AttacheModuleAsyncOptions, AttacheModuleOptions, AttacheModuleStaticOptions, AttacheStoreConfig } from './options.js';
import { ATTACHE_CONFIG, ATTACHE_MOUNT, ATTACHE_STORE } from './tokens.js';

const DEFAULT_PATH = 'v1';

/** What `configure` needs to know about this instance of the module. */
interface AttacheMount {
  /** attache's controller; none with `path: false`. */
  controller: Type<unknown> | undefined;
  parseOtherRoutes: boolean;
}

@Module({})
export class AttacheModule implements NestModule {
  constructor(@Inject(ATTACHE_MOUNT) private readonly mount: AttacheMount) {}

  /**
   * Flags requests to attache's controller, then parses JSON and urlencoded
   * bodies of every other route (Nest's defaults, for an app created with
   * `{ bodyParser: false }`): attache's routes read their bodies themselves.
   */
  configure(consumer: MiddlewareConsumer): void {
    if (this.mount.controller === undefined) return;
    consumer.apply(flagAttacheRequest).forRoutes(this.mount.controller);
    if (this.mount.parseOtherRoutes) {
      consumer.apply(...parsersSkippingAttache()).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
    }
  }

  /** Serves `options.store`; the caller owns the store and closes it. */
  static forRoot(options: AttacheModuleOptions): DynamicModule {
    const { path: _path, global: _global, parseOtherRoutes: _parse, ...config } = options;
    return defineModule(options, { provide: ATTACHE_CONFIG, useValue: config }, []);
  }

  /**
   * Builds the store with `useFactory` (dependencies from `inject`, modules
   * from `imports`). The module owns that store: it is closed when the
   * application shuts down (`app.close()`), after the server stopped.
   */
  static forRootAsync(options: AttacheModuleAsyncOptions): DynamicModule {
    const configProvider: Provider = {
      provide: ATTACHE_CONFIG,
      useFactory: options.useFactory,
      inject: options.inject ?? [],
    };
    return defineModule(options, configProvider, [AttacheStoreCloser], options.imports ?? []);
  }
}

function defineModule(
  options: AttacheModuleStaticOptions,
  configProvider: Provider,
  extraProviders: Provider[],
  imports: NonNullable<DynamicModule['imports']> = [],
): DynamicModule {
  const path = options.path ?? DEFAULT_PATH;
  const controller = path === false ? undefined : createAttacheController(path);
  const mount: AttacheMount = { controller, parseOtherRoutes: options.parseOtherRoutes ?? true };
  const storeProvider: Provider = {
    provide: ATTACHE_STORE,
    useFactory: (config: AttacheStoreConfig) => config.store,
    inject: [ATTACHE_CONFIG],
  };
  return {
    module: AttacheModule,
    global: options.global ?? false,
    imports,
    controllers: controller === undefined ? [] : [controller],
    providers: [
      configProvider,
      storeProvider,
      { provide: ATTACHE_MOUNT, useValue: mount },
      ...(controller === undefined ? [] : [AttacheHttp]),
      ...extraProviders,
    ],
    exports: [ATTACHE_STORE, ATTACHE_CONFIG],
  };
}

/** Closes a store that `forRootAsync`'s factory made, once the app has stopped serving. */
@Injectable()
class AttacheStoreCloser implements OnApplicationShutdown {
  constructor(@Inject(ATTACHE_CONFIG) private readonly config: AttacheStoreConfig) {}

  async onApplicationShutdown(): Promise<void> {
    await this.config.store.close();
  }
}
