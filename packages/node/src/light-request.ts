// A Web `Request` made without the fetch `Request` constructor.
//
// Core's handler reads five fields of a request: method, url, headers,
// signal and body. undici's constructor checks all of them again, makes a
// second AbortController that follows ours and inspects the body: about a
// third of the whole Node → Web conversion on a small request (measured), and
// it throws for the methods fetch forbids that Node's HTTP server hands to
// request listeners (TRACE, TRACK) — one `curl -X TRACE` crashed the server. A
// light request is a `Request` (Request.prototype is on its prototype chain)
// whose five fields are served as given; anything else of it (`json()`,
// `clone()`, `cache`, …) makes the real Request from the same fields on first
// use and answers from that. @hono/node-server converts requests the same way.

/** What the conversion gives; `body` null for GET and HEAD. */
export interface RequestFields {
  url: string;
  method: string;
  headers: Headers;
  signal: AbortSignal;
  body: ReadableStream<Uint8Array> | null;
}

const FIELDS = Symbol('attache.requestFields');
const REAL = Symbol('attache.request');

type LightRequest = Request & { [FIELDS]: RequestFields; [REAL]?: Request };

/** The fetch Request with the same fields, made once, when a part other than the five is asked for. */
function realRequest(light: LightRequest): Request {
  if (light[REAL]) return light[REAL];
  const { url, method, headers, signal, body } = light[FIELDS];
  // `duplex` is required by undici for a stream body; not yet in the DOM typings.
  const init: RequestInit & { duplex?: 'half' } = body === null ? { method, headers, signal } : { method, headers, signal, body, duplex: 'half' };
  light[REAL] = new Request(url, init);
  return light[REAL];
}

const lightPrototype: object = Object.create(Request.prototype);
for (const name of ['method', 'url', 'headers', 'signal', 'body'] as const) {
  Object.defineProperty(lightPrototype, name, {
    get(this: LightRequest) {
      return this[FIELDS][name];
    },
    configurable: true,
  });
}
for (const name of Reflect.ownKeys(Request.prototype)) {
  if (name === 'constructor' || Object.hasOwn(lightPrototype, name)) continue;
  const descriptor = Object.getOwnPropertyDescriptor(Request.prototype, name)!;
  if (descriptor.get) {
    Object.defineProperty(lightPrototype, name, {
      get(this: LightRequest) {
        return Reflect.get(realRequest(this), name);
      },
      configurable: true,
    });
  } else if (typeof descriptor.value === 'function') {
    const method = descriptor.value as (...args: unknown[]) => unknown;
    Object.defineProperty(lightPrototype, name, {
      value(this: LightRequest, ...args: unknown[]) {
        return method.apply(realRequest(this), args);
      },
      configurable: true,
      writable: true,
    });
  }
  // Plain values (Symbol.toStringTag) are inherited as they are.
}

export function lightRequest(fields: RequestFields): Request {
  const request = Object.create(lightPrototype) as LightRequest;
  request[FIELDS] = fields;
  return request;
}
