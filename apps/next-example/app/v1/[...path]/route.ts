// attache's whole HTTP API under /v1: every method goes to core's Web
// handler, which routes by path itself. The request body reaches it as the
// stream Next got from the socket (nothing is buffered here), and its
// response bodies (downloads) stream back the same way.
import { attacheHandler } from '../../../lib/attache';

// better-sqlite3 and node:fs need Node; nothing here may be prerendered.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

async function handle(request: Request): Promise<Response> {
  const handler = await attacheHandler();
  return handler(request);
}

export { handle as GET, handle as HEAD, handle as POST, handle as PUT, handle as PATCH, handle as DELETE, handle as OPTIONS };
