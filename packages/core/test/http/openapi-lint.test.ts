// The served OpenAPI document passes `redocly lint` with the recommended
// rules (redocly.yaml at the repository root): errors and warnings alike
// fail this test, so CI's one test command keeps the document lint-clean.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../src/http/openapi.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../../..');
const REDOCLY = join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');

interface LintProblem {
  ruleId: string;
  severity: string;
  message: string;
}

async function lint(document: unknown): Promise<LintProblem[]> {
  const file = join(directory, 'openapi.json');
  await writeFile(file, JSON.stringify(document, null, 2));
  // `--format json` prints the problems on stdout; redocly exits 1 on errors,
  // which execFile reports as a rejection still carrying stdout.
  const result = await run(process.execPath, [REDOCLY, 'lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format', 'json'], {
    cwd: ROOT,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { problems: LintProblem[] };
  return report.problems.map(({ ruleId, severity, message }) => ({ ruleId, severity, message }));
}

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'attache-openapi-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('OpenAPI document under redocly lint (recommended rules)', () => {
  it.each([
    ['with a bearer token', true],
    ['without a token', false],
  ])('has no errors and no warnings %s', async (_label, bearerAuth) => {
    expect(await lint(buildOpenApiDocument({ basePath: '/v1', bearerAuth }))).toEqual([]);
  });

  it('reports a broken document (so the check above cannot pass vacuously)', async () => {
    const broken = buildOpenApiDocument({ basePath: '/v1', bearerAuth: true }) as { paths: Record<string, unknown> };
    broken.paths['/acquire'] = { post: { responses: { '200': { description: 'x', content: { 'application/json': { schema: { $ref: '#/nope' } } } } } } };
    const problems = await lint(broken);
    expect(problems.map((problem) => problem.ruleId)).toEqual(expect.arrayContaining(['no-unresolved-refs']));
  });
});
