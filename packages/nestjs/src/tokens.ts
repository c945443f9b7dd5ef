// Injection tokens of the module and the decorator that injects the store.
import { Inject } from '@nestjs/common';

/** The `AttachmentStore` the module serves (`@Inject(ATTACHE_STORE)` or `@InjectAttacheStore()`). */
export const ATTACHE_STORE = Symbol('attache:store');

/** The resolved `AttacheStoreConfig` (store, authorize hook, token) the HTTP routes use. */
export const ATTACHE_CONFIG = Symbol('attache:config');

/** How this instance of the module is mounted (internal to the module). */
export const ATTACHE_MOUNT = Symbol('attache:mount');

/** Injects the module's `AttachmentStore` into a constructor parameter or property. */
export function InjectAttacheStore(): PropertyDecorator & ParameterDecorator {
  return Inject(ATTACHE_STORE);
}
