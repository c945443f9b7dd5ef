// What `AttacheModule.forRoot` / `forRootAsync` accept.
import type { AttachmentStore, HandlerOptions } from '@attache/core';
import type { FactoryProvider, ModuleMetadata } from '@nestjs/common';

/** Everything the routes need at run time; `forRootAsync`'s factory returns this. */
export interface AttacheStoreConfig extends Omit<HandlerOptions, 'basePath'> {
  store: AttachmentStore;
}

/** Settled when the module is defined, because Nest fixes controller paths then. */
export interface AttacheModuleStaticOptions {
  /**
   * Where the HTTP contract is served, relative to the app's global prefix
   * (default `v1`). `false` registers no controller: the store is only
   * injectable (for the upload interceptor and your own services).
   */
  path?: string | false;
  /** Registers the module globally, so every module can inject the store (default false). */
  global?: boolean;
  /**
   * Parse JSON and urlencoded bodies of the app's other routes, as Nest's
   * default body parser would (default true). Create the app with
   * `NestFactory.create(AppModule, { bodyParser: false })`: Nest's own parser
   * has no per-route switch and would read attache's upload bodies first.
   */
  parseOtherRoutes?: boolean;
}

export interface AttacheModuleOptions extends AttacheStoreConfig, AttacheModuleStaticOptions {}

export interface AttacheModuleAsyncOptions extends AttacheModuleStaticOptions {
  /** Modules that export the factory's dependencies. */
  imports?: ModuleMetadata['imports'];
  /** Tokens whose providers are passed to `useFactory`, in order. */
  inject?: FactoryProvider['inject'];
  /**
   * Builds the store (and hook/token) from injected providers. The module
   * owns a store made here and closes it when the application shuts down.
   */
  // Nest passes the injected providers positionally, with types it cannot know.
  useFactory: (...dependencies: any[]) => AttacheStoreConfig | Promise<AttacheStoreConfig>;
}
