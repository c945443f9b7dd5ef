#!/usr/bin/env node
// Release rehearsal: what `pnpm release:version` + `pnpm release:publish`
// would do, in a throwaway copy of the repository, without publishing.
//
//   1. build (turbo, cached), copy the repository to a temp dir (no
//      node_modules, no .git);
//   2. `changeset version` there, then `pnpm publish -r --dry-run`;
//   3. `pnpm pack` every public package and check each tarball's manifest
//      (versions instead of `workspace:`, access public, engines, files, …);
//   4. install the core + sql + fs tarballs with npm, plus better-sqlite3
//      from the registry, into a scratch project outside the repository and
//      type-check and run the examples of packages/core/README.md and the
//      SQLite example of packages/sql/README.md against them (and check
//      that pg was not installed and `@attache/sql/postgres` says so);
//   5. the same tarballs with pg but without better-sqlite3 (a
//      PostgreSQL-only app) in a second scratch project: check that
//      better-sqlite3 was not installed, that `@attache/sql/sqlite` then
//      fails naming it, and run packages/sql/README.md's PostgreSQL example
//      against a throwaway PostgreSQL (packages/testing's harness, or
//      $ATTACHE_TEST_DATABASE_URL).
//
// Stops with a non-zero exit status at the first failure. Everything goes to stderr, so that
// .ci/run's summary stays the last line on stdout.
// Run: `pnpm release:check` (needs the npm registry for steps 4 and 5, and
// PostgreSQL's server binaries or $ATTACHE_TEST_DATABASE_URL for step 5).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const keep = process.env.KEEP_REHEARSAL === '1';
// Packages that exist to test or demonstrate; never published.
const MUST_BE_PRIVATE = ['@attache/testing', '@attache/reliability'];
const SCRATCH_PACKAGES = ['@attache/core', '@attache/sql', '@attache/fs'];
// What a TypeScript app on PostgreSQL adds from the registry (sql's drivers are optional peers).
const POSTGRES_APP_EXTRAS = ['pg', '@types/pg', '@types/node'];

const log = (message) => console.error(`==> release rehearsal: ${message}`);
class RehearsalFailure extends Error {}
/** Stops the rehearsal; the temp directory is still removed. */
const fail = (message) => {
  throw new RehearsalFailure(message);
};

/** Runs a command; its output is shown only when it fails (or when asked). */
function run(command, args, { cwd, show = false, env } = {}) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) {
    console.error(output);
    fail(`${command} ${args.join(' ')} (in ${cwd}) exited with ${result.status ?? result.signal}`);
  }
  if (show) console.error(output.trimEnd());
  return result.stdout ?? '';
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

function workspacePackages(root) {
  const found = [];
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      const manifest = join(root, group, entry.name, 'package.json');
      if (entry.isDirectory() && existsSync(manifest)) {
        found.push({ dir: join(root, group, entry.name), group, manifest: readJson(manifest) });
      }
    }
  }
  return found;
}

/** The ```ts blocks of a README under the `## ` headings that match `headings`, in order. */
function readmeExamples(file, headings) {
  const blocks = [];
  let heading = '';
  for (const match of readFileSync(file, 'utf8').matchAll(/^## (.*)$|^```ts\n([\s\S]*?)^```$/gmu)) {
    if (match[1] !== undefined) heading = match[1];
    else if (headings.test(heading)) blocks.push(match[2]);
  }
  return blocks;
}

/** A new npm project in `dir` (outside the repository) with `installs`: tarball paths and `name@range` specs. */
function scratchProject(dir, installs) {
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: basename(dir), private: true, type: 'module' }, null, 2)}\n`);
  run('npm', ['install', '--no-fund', '--no-audit', ...installs], {
    cwd: dir,
    env: { npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
  });
  return dir;
}

/** Type-checks `files` (name → TypeScript source) strictly in a scratch project, runs each, and returns what they printed. */
function typecheckAndRun(dir, files, { types = [], env } = {}) {
  for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
  const compilerOptions = {
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    lib: ['es2023', 'dom'],
    types,
    strict: true,
    skipLibCheck: true,
    noEmitOnError: true,
    outDir: 'out',
  };
  writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions, files: Object.keys(files) }, null, 2)}\n`);
  run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir });
  return Object.keys(files)
    .map((name) => run(process.execPath, [join('out', name.replace(/\.ts$/u, '.js'))], { cwd: dir, env }))
    .join('');
}

/** Every installed copy of the (unscoped) package `name` under the node_modules directory `root`, nested ones included. */
function installedCopies(root, name) {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.name === name && basename(entry.parentPath) === 'node_modules')
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * Fails unless `driver` is absent from the project in `dir` (nested
 * node_modules included) and importing `entryPoint` there fails with an
 * error that contains `message`.
 */
function expectDriverAbsent(dir, driver, entryPoint, message) {
  const installed = installedCopies(join(dir, 'node_modules'), driver);
  if (installed.length > 0) {
    fail(`${driver} was installed without being asked for: ${installed.map((path) => relative(dir, path)).join(', ')}`);
  }
  const attempt = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(entryPoint)});`], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (attempt.status === 0 || !attempt.stderr.includes(message)) {
    fail(`importing ${entryPoint} without ${driver} should fail with ${JSON.stringify(message)}; exit ${attempt.status}:\n${attempt.stderr}`);
  }
}

/**
 * An empty database on $ATTACHE_TEST_DATABASE_URL's server, or on a
 * throwaway server started by packages/testing's harness (built above).
 */
async function throwawayPostgresDatabase() {
  const harness = await import(pathToFileURL(join(repo, 'packages/testing/dist/postgres.js')).href);
  const given = process.env.ATTACHE_TEST_DATABASE_URL;
  if (!given && harness.findPostgresBinaries() === undefined) {
    fail('step 5 needs PostgreSQL: install its server binaries (apt-get install postgresql) or set ATTACHE_TEST_DATABASE_URL');
  }
  const server = given ? undefined : await harness.startPostgres();
  try {
    const database = await harness.createTestDatabase(given ?? server.url);
    return {
      url: database.url,
      async drop() {
        try {
          await database.drop();
        } finally {
          await server?.stop();
        }
      },
    };
  } catch (error) {
    await server?.stop();
    throw error;
  }
}

const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'attache-release-'));
try {
  log('build (turbo, cached)');
  run('pnpm', ['turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: repo, env: { TURBO_TELEMETRY_DISABLED: '1' } });

  // ── 1. a throwaway copy ────────────────────────────────────────────
  const copy = join(work, 'repo');
  cpSync(repo, copy, {
    recursive: true,
    filter: (source) => {
      const name = basename(source);
      return !['node_modules', '.git', '.turbo', '.next', 'test-results.json'].includes(name);
    },
  });

  const before = workspacePackages(copy);
  for (const pkg of before) {
    if ((pkg.group === 'apps' || MUST_BE_PRIVATE.includes(pkg.manifest.name)) && pkg.manifest.private !== true) {
      fail(`${pkg.manifest.name} must be "private": true (it must never be published)`);
    }
  }
  const publicNames = before.filter((pkg) => pkg.manifest.private !== true).map((pkg) => pkg.manifest.name).sort();

  // ── 2. changeset version + publish dry run ─────────────────────────
  log('changeset version');
  run(process.execPath, [join(repo, 'node_modules/@changesets/cli/bin.js'), 'version'], { cwd: copy });
  const after = workspacePackages(copy);
  const versions = new Map(after.map((pkg) => [pkg.manifest.name, pkg.manifest.version]));
  for (const pkg of after) {
    const old = before.find((b) => b.manifest.name === pkg.manifest.name).manifest.version;
    if (pkg.manifest.private === true && pkg.manifest.version !== old) {
      fail(`changeset version bumped the private ${pkg.manifest.name} (${old} → ${pkg.manifest.version})`);
    }
  }
  const leftBehind = readdirSync(join(copy, '.changeset')).filter((file) => file.endsWith('.md') && file !== 'README.md');
  if (leftBehind.length > 0) {
    // A changeset that names only private packages is never consumed.
    fail(`changeset version left changeset files behind (do they name only private packages?): ${leftBehind.join(', ')}`);
  }
  log(`versions: ${publicNames.map((name) => `${name}@${versions.get(name)}`).join(', ')}`);

  log('pnpm publish -r --dry-run');
  const published = run('pnpm', ['publish', '-r', '--dry-run', '--no-git-checks'], { cwd: copy });
  const announced = [...published.matchAll(/📦\s+(@?[^@\s]+)@/gu)].map((match) => match[1]).sort();
  if (JSON.stringify(announced) !== JSON.stringify(publicNames)) {
    fail(`publish would cover ${announced.join(', ')}; expected ${publicNames.join(', ')}`);
  }

  // ── 3. pack and check every public package ─────────────────────────
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  const tarballOf = new Map();
  const manifests = new Map();
  for (const pkg of after.filter((p) => p.manifest.private !== true)) {
    const name = pkg.manifest.name;
    run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: pkg.dir });
    const file = join(tarballs, `${name.replace(/^@/, '').replace('/', '-')}-${pkg.manifest.version}.tgz`);
    if (!existsSync(file)) fail(`pnpm pack did not write ${relative(work, file)}`);
    tarballOf.set(name, file);
    const unpacked = join(work, 'unpacked', name);
    mkdirSync(unpacked, { recursive: true });
    run('tar', ['-xzf', file, '-C', unpacked]);
    const packed = readJson(join(unpacked, 'package/package.json'));
    const problems = [];
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
      for (const [dep, spec] of Object.entries(packed[field] ?? {})) {
        if (String(spec).startsWith('workspace:')) problems.push(`${field}.${dep} is still "${spec}"`);
        if (field === 'devDependencies') continue;
        if (MUST_BE_PRIVATE.includes(dep)) problems.push(`${field}.${dep} is a private package`);
        if (versions.has(dep) && !String(spec).includes(versions.get(dep))) {
          problems.push(`${field}.${dep} is "${spec}", not the released ${versions.get(dep)}`);
        }
      }
    }
    if (packed.version !== versions.get(name)) problems.push(`version ${packed.version} ≠ ${versions.get(name)}`);
    if (!packed.license) problems.push('no license');
    if (!packed.engines?.node) problems.push('no engines.node');
    if (packed.publishConfig?.access !== 'public') problems.push('publishConfig.access is not "public"');
    if (!packed.exports?.['.']) problems.push('no exports["."]');
    const exported = [];
    for (const [entry, target] of Object.entries(packed.exports ?? {})) {
      if (!target?.default || !target?.types) problems.push(`exports["${entry}"] lacks default or types`);
      exported.push(target?.default, target?.types);
    }
    const present = (path) => existsSync(join(unpacked, 'package', path));
    for (const path of ['README.md', ...exported, ...Object.values(packed.bin ?? {})]) {
      if (path && !present(path)) problems.push(`${path} is not in the tarball`);
    }
    if (present('test')) problems.push('tests are in the tarball');
    if (problems.length > 0) fail(`${name}: ${problems.join('; ')}`);
    manifests.set(name, packed);
  }
  log(`packed and checked ${tarballOf.size} tarballs`);

  // ── 4. install into a scratch project and run the READMEs ──────────
  const sqlManifest = manifests.get('@attache/sql');
  const rootManifest = readJson(join(repo, 'package.json'));
  /** `name@range` as our manifests ask for it: sql's peer and dev ranges, the repository's @types/node. */
  const registrySpec = (name) => {
    const range =
      sqlManifest.peerDependencies?.[name] ?? sqlManifest.devDependencies?.[name] ?? rootManifest.devDependencies?.[name];
    if (!range) fail(`no version range for ${name} in @attache/sql's or the repository's package.json`);
    return `${name}@${range}`;
  };
  const scratchPackages = SCRATCH_PACKAGES.map((name) => tarballOf.get(name));

  log(`npm install ${SCRATCH_PACKAGES.join(' ')} from their tarballs, and better-sqlite3 (it compiles; about a minute)`);
  const scratch = scratchProject(join(work, 'scratch'), [...scratchPackages, registrySpec('better-sqlite3')]);
  // The core README's examples, in order, as one module (the first one closes
  // the store the next one still uses, so `store.close()` moves to the end).
  const coreBlocks = readmeExamples(join(repo, 'packages/core/README.md'), /leased face|document face/u);
  if (coreBlocks.length < 2) fail(`found ${coreBlocks.length} examples in packages/core/README.md, expected the keyed and the document face`);
  const [sqliteExample, ...moreSqlite] = readmeExamples(join(repo, 'packages/sql/README.md'), /^SQLite/u);
  if (sqliteExample === undefined || moreSqlite.length > 0) fail('expected one example under "## SQLite" in packages/sql/README.md');
  log('type-check and run the examples of packages/core/README.md and the SQLite one of packages/sql/README.md');
  const output = typecheckAndRun(scratch, {
    'example.ts': `${coreBlocks.join('\n').replace(/^await store\.close\(\);.*$/gmu, '')}\nawait store.close();\n`,
    'sqlite-example.ts': sqliteExample,
  });
  for (const expected of ['%PDF-1.7', "hash: '3610a686'", 'ello', "name: 'scan.pdf'"]) {
    if (!output.includes(expected)) fail(`the README examples printed no ${JSON.stringify(expected)}:\n${output}`);
  }
  // The other way round: a SQLite app has no pg, and the PostgreSQL entry says so.
  expectDriverAbsent(scratch, 'pg', '@attache/sql/postgres', "Cannot find package 'pg'");

  // ── 5. a PostgreSQL-only app: no better-sqlite3 ────────────────────
  log(`npm install ${SCRATCH_PACKAGES.join(' ')} from their tarballs with ${POSTGRES_APP_EXTRAS.join(', ')}, without better-sqlite3`);
  const postgresApp = scratchProject(join(work, 'postgres-only'), [...scratchPackages, ...POSTGRES_APP_EXTRAS.map(registrySpec)]);
  expectDriverAbsent(postgresApp, 'better-sqlite3', '@attache/sql/sqlite', 'npm install better-sqlite3');
  const [postgresExample, ...morePostgres] = readmeExamples(join(repo, 'packages/sql/README.md'), /^PostgreSQL/u);
  if (postgresExample === undefined || morePostgres.length > 0) fail('expected one example under "## PostgreSQL" in packages/sql/README.md');
  const database = await throwawayPostgresDatabase();
  try {
    log("type-check and run packages/sql/README.md's PostgreSQL example on a throwaway database");
    const printed = typecheckAndRun(postgresApp, { 'postgres-example.ts': postgresExample }, {
      types: ['node'],
      env: { ATTACHE_DATABASE_URL: database.url },
    });
    if (!printed.includes("name: 'scan.pdf'")) fail(`the PostgreSQL example printed no "name: 'scan.pdf'":\n${printed}`);
  } finally {
    await database.drop();
  }
  log(`ok (${Math.round((Date.now() - started) / 1000)} s)`);
} catch (error) {
  console.error(`==> release rehearsal FAILED: ${error instanceof RehearsalFailure ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  if (keep) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
