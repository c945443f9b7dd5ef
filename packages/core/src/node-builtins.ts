// The one door from core to Node's built-in modules. Where the runtime has
// `process.getBuiltinModule` (Node ≥ 20.16, Bun, Workers with
// nodejs_compat) it loads a built-in synchronously without a static `node:`
// import, so core still bundles for Workers; elsewhere the answer is
// undefined and the caller falls back to portable code. Reached through
// `globalThis` and typed here, so core compiles without Node's types; the
// build-output scan (test/portable-build.test.ts) allows `process` only in
// this module, and only as written below.

interface BuiltinModuleHost {
  getBuiltinModule?: (id: string) => unknown;
}

const getBuiltinModule = (globalThis as { process?: BuiltinModuleHost }).process?.getBuiltinModule;

/** A Node built-in module (`node:zlib`, …), or undefined where there is none. `T` is the part of it the caller uses. */
export function nodeBuiltin<T>(id: `node:${string}`): T | undefined {
  if (typeof getBuiltinModule !== 'function') return undefined;
  try {
    return getBuiltinModule(id) as T;
  } catch {
    return undefined;
  }
}
