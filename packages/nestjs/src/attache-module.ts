// `AttacheModule.forRoot` / `forRootAsync`: provides the store under
// `ATTACHE_STORE` and mounts the HTTP contract at `/<path>` (default `/v1`).
import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { createAttacheController } from './attache-controller.js';
import { AttacheHttp } from './attache-http.js';
import type { AttacheModuleAsyncOptions, AttacheModuleOptions, AttacheModuleStaticOptions, AttacheStoreConfig } from './options.js';
import { ATTACHE_CONFIG, ATTACHE_STORE } from './tokens.js';

const DEFAULT_PATH = 'v1';

@Module({})
export class AttacheModule {
  /** Serves `options.store`; the caller owns the store and closes it. */
  static forRoot(options: AttacheModuleOptions): DynamicModule {
    const { path: _path, global: _global, ...config } = options;
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
  const storeProvider: Provider = {
    provide: ATTACHE_STORE,
    useFactory: (config: AttacheStoreConfig) => config.store,
    inject: [ATTACHE_CONFIG],
  };
  return {
    module: AttacheModule,
    global: options.global ?? false,
    imports,
    controllers: path === false ? [] : [createAttacheController(path)],
    providers: [configProvider, storeProvider, ...(path === false ? [] : [AttacheHttp]), ...extraProviders],
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
