import { describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/errors.js';
import { MAX_TTL_SECONDS, MIN_TTL_SECONDS } from '../../src/lease-rules.js';
import { buildOpenApiDocument } from '../../src/http/openapi.js';
import { ROUTES } from '../../src/http/routes.js';
import { TUS_ROUTES } from '../../src/http/tus.js';

type Node = Record<string, unknown>;
const document = buildOpenApiDocument({ basePath: '/v1', bearerAuth: true }) as Node;
const paths = document.paths as Record<string, Node>;

function resolveRef(ref: string): unknown {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((node, part) => (node as Node | undefined)?.[part], document);
}

function* walk(node: unknown): Generator<Node> {
  if (node === null || typeof node !== 'object') return;
  if (!Array.isArray(node)) yield node as Node;
  for (const value of Object.values(node)) yield* walk(value);
}

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 served under the base path, with bearer security when a token is set', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.servers).toEqual([{ url: '/v1' }]);
    expect(document.security).toEqual([{ bearer: [] }]);
    expect(document.components).toHaveProperty('securitySchemes.bearer', expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    expect(paths['/healthz']!.get).toHaveProperty('security', []);
    expect(paths['/healthz']!.head).toHaveProperty('security', []);
    // Without a token the document says so: no security at all.
    const open = buildOpenApiDocument({ basePath: '/v1', bearerAuth: false });
    expect(open.security).toEqual([]);
    expect(open.components).not.toHaveProperty('securitySchemes');
  });

  it('describes exactly the routes and methods the handler serves', () => {
    const served = [
      ...Object.entries(ROUTES).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m} ${path}`)),
      ...Object.entries(TUS_ROUTES).flatMap(([path, methods]) => methods.map((m) => `${m} ${path}`)),
    ];
    const described = Object.entries(paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((key) => key !== 'parameters')
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(described.sort()).toEqual(served.sort());
  });

  it('states the limits the server enforces: ttl_seconds from 1 ms to core’s 7 days, owner at most 256 characters', () => {
    const schemas = (document.components as Node).schemas as Record<string, Node>;
    for (const name of ['AcquireRequest', 'KeepaliveRequest']) {
      const ttl = (schemas[name]!.properties as Node).ttl_seconds as Node;
      expect(ttl, name).toMatchObject({ type: 'number', minimum: MIN_TTL_SECONDS, maximum: MAX_TTL_SECONDS });
    }
    expect(MIN_TTL_SECONDS).toBe(0.001);
    expect(MAX_TTL_SECONDS).toBe(604_800);
    expect((schemas.AcquireRequest!.properties as Node).owner).toMatchObject({ minLength: 1, maxLength: 256 });
  });

  it('has no dangling $ref', () => {
    for (const node of walk(document)) {
      if (typeof node.$ref === 'string') expect(resolveRef(node.$ref), node.$ref).toBeDefined();
    }
  });

  it('names every error code, and each operation lists its codes under their status', () => {
    const schema = (document.components as Node).schemas as Record<string, Node>;
    const codes = ((schema.Error!.properties as Node).error as Node).enum as string[];
    expect(codes.sort()).toEqual(Object.keys(ERROR_STATUS).sort());
    const listed = new Set<string>();
    for (const operations of Object.values(paths)) {
      for (const operation of Object.values(operations) as Node[]) {
        if (Array.isArray(operation)) continue; // path-level parameters
        for (const [status, response] of Object.entries(operation.responses as Record<string, Node>)) {
          const content = (response.content as Node | undefined)?.['application/json'] as Node | undefined;
          const allOf = (content?.schema as Node | undefined)?.allOf as Node[] | undefined;
          const statusCodes = allOf ? (((allOf[1]!.properties as Node).error as Node).enum as (keyof typeof ERROR_STATUS)[]) : [];
          for (const code of statusCodes) {
            expect(String(ERROR_STATUS[code]), code).toBe(status);
            listed.add(code);
          }
        }
      }
    }
    // invalid_argument has no HTTP route (invalid_ref has one: a document's chosen id; not_found too: an unknown upload).
    const unlisted = Object.keys(ERROR_STATUS).filter((code) => !listed.has(code));
    expect(unlisted.sort()).toEqual(['invalid_argument']);
  });
});
