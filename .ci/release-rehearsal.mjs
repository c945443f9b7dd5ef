#!/usr/bin/env node
// Release rehearsal: what `pnpm release:version` + `pnpm release:publish`
// would do, in a throwaway copy of the repository, without publishing.
//
//   1. build (turbo, cached), copy the repository to a temp dir (no
//      node_modules, no .git);
//   2. `changeset version` there, then `pnpm publish -r --dry-run`;
//   3. `pnpm pack` every public package and check each tarball's manifest
//      (versions instead of `workspace:`, access public, engines, files, …);
//   4. install the core + sql + fs tarballs with npm into a scratch project
//      outside the repository and type-check and run the examples of
//      packages/core/README.md against them.
//
// Stops with a non-zero exit status at the first failure. Everything goes to stderr, so that
// .ci/run's summary stays the last line on stdout.
// Run: `pnpm release:check` (needs the npm registry for step 4).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const keep = process.env.KEEP_REHEARSAL === '1';
// Packages that exist to test or demonstrate; never published.
const MUST_BE_PRIVATE = ['@attache/testing', '@attache/reliability'];
const SCRATCH_PACKAGES = ['@attache/core', '@attache/sql', '@attache/fs'];

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
      return !['node_modules', '.git', '.turbo', 'test-results.json'].includes(name);
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
  if (readdirSync(join(copy, '.changeset')).some((file) => file.endsWith('.md') && file !== 'README.md')) {
    fail('changeset version left changeset files behind');
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
    if (!packed.exports?.['.']?.default || !packed.exports?.['.']?.types) problems.push('exports["."] lacks default or types');
    const present = (path) => existsSync(join(unpacked, 'package', path));
    for (const path of ['README.md', packed.exports?.['.']?.default, packed.exports?.['.']?.types, ...Object.values(packed.bin ?? {})]) {
      if (path && !present(path)) problems.push(`${path} is not in the tarball`);
    }
    if (present('test')) problems.push('tests are in the tarball');
    if (problems.length > 0) fail(`${name}: ${problems.join('; ')}`);
  }
  log(`packed and checked ${tarballOf.size} tarballs`);

  // ── 4. install into a scratch project and run the README ───────────
  const scratch = join(work, 'scratch');
  mkdirSync(scratch);
  writeFileSync(join(scratch, 'package.json'), `${JSON.stringify({ name: 'scratch', private: true, type: 'module' }, null, 2)}\n`);
  log(`npm install ${SCRATCH_PACKAGES.join(' ')} from their tarballs (better-sqlite3 compiles; about a minute)`);
  run('npm', ['install', '--no-fund', '--no-audit', ...SCRATCH_PACKAGES.map((name) => tarballOf.get(name))], {
    cwd: scratch,
    env: { npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
  });

  // The README's examples, in order, as one module (the first one closes the
  // store the next one still uses, so `store.close()` moves to the end).
  const readme = readFileSync(join(repo, 'packages/core/README.md'), 'utf8');
  const blocks = [];
  let heading = '';
  for (const match of readme.matchAll(/^## (.*)$|^```ts\n([\s\S]*?)^```$/gmu)) {
    if (match[1] !== undefined) heading = match[1];
    else if (/leased face|document face/u.test(heading)) blocks.push(match[2]);
  }
  if (blocks.length < 2) fail(`found ${blocks.length} examples in packages/core/README.md, expected the keyed and the document face`);
  const example = `${blocks.join('\n').replace(/^await store\.close\(\);.*$/gmu, '')}\nawait store.close();\n`;
  writeFileSync(join(scratch, 'example.ts'), example);
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          lib: ['es2023', 'dom'],
          types: [],
          strict: true,
          skipLibCheck: true,
          noEmitOnError: true,
          outDir: 'out',
        },
        files: ['example.ts'],
      },
      null,
      2,
    )}\n`,
  );
  log('type-check and run the examples of packages/core/README.md against the installed tarballs');
  run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: scratch });
  const output = run(process.execPath, ['out/example.js'], { cwd: scratch });
  for (const expected of ['%PDF-1.7', "hash: '3610a686'", 'ello']) {
    if (!output.includes(expected)) fail(`the README example printed no ${JSON.stringify(expected)}:\n${output}`);
  }
  log(`ok (${Math.round((Date.now() - started) / 1000)} s)`);
} catch (error) {
  console.error(`==> release rehearsal FAILED: ${error instanceof RehearsalFailure ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  if (keep) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
