// Loads a native database driver that the app installs itself (an optional
// peer dependency), failing with a message that names the package to
// install. Synchronous (`require`) so that the entry needs no top-level
// await; only for drivers no bundler could inline anyway (native addons).
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

/** `require(name)`, or an error naming `name` as the package to install when it is missing. */
export function requireDriver<T>(name: string, entryPoint: string): T {
  try {
    return requireFromHere(name) as T;
  } catch (error) {
    if (isMissingPackage(error, name)) {
      throw new Error(
        `${entryPoint} needs the "${name}" package, which is not installed. Install it beside @attache/sql: npm install ${name}`,
        { cause: error },
      );
    }
    // Installed but broken (e.g. a native build that failed): its own error says why.
    throw error;
  }
}

/** Node's "Cannot find module '<name>'" for the package itself, not for something it requires. */
function isMissingPackage(error: unknown, name: string): boolean {
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') return false;
  return error.message.startsWith(`Cannot find module '${name}'`);
}
