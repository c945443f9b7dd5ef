// Where in the request URL the attache routes are mounted, as Hono sees it.
//
// Hono copies a sub-app's routes into its parent at `app.route()` time, so
// the sub-app never learns its prefix; the only reliable source is the
// request's own match. `basePath(c)` from `hono/route` gives the prefix of
// the matched route with any `:param` filled in, but in Hono's *decoded*
// path, while core compares against the *raw* `new URL(request.url).pathname`
// (`/t%C3%A9nant/v1` vs `/ténant/v1`). The part after the prefix (the route
// core serves, e.g. `/attachments`) has the same number of `/` separators in
// both spellings (`decodeURI` never decodes `%2F`), so we cut that many
// segments off the raw path and keep what is left: the prefix exactly as
// core will see it in `request.url`.
import type { Context } from 'hono';
import { basePath as matchedBasePath } from 'hono/route';

/** The raw (percent-encoded) mount prefix of the current request: `''` at the root, else `/…` without a trailing slash. */
export function mountPrefixOf(c: Context): string {
  const routedPath = c.req.path;
  const routedPrefix = withoutTrailingSlashes(matchedBasePath(c));
  const relativePath = routedPath.startsWith(routedPrefix) ? routedPath.slice(routedPrefix.length) : routedPath;
  const rawPath = new URL(c.req.url).pathname;
  const prefixEnd = indexBeforeTrailingSegments(rawPath, countSlashes(relativePath));
  // A custom `getPath` that restructures the path could leave fewer raw
  // segments than Hono routed on; Hono's own prefix is then the best guess.
  return prefixEnd < 0 ? routedPrefix : rawPath.slice(0, prefixEnd);
}

function withoutTrailingSlashes(path: string): string {
  return path.replace(/\/+$/, '');
}

function countSlashes(path: string): number {
  let count = 0;
  for (const character of path) if (character === '/') count++;
  return count;
}

/** Index of the `/` that starts the last `segments` segments of `path` (its length when 0; -1 when it has fewer). */
function indexBeforeTrailingSegments(path: string, segments: number): number {
  let end = path.length;
  for (let remaining = segments; remaining > 0; remaining--) {
    if (end <= 0) return -1;
    end = path.lastIndexOf('/', end - 1);
    if (end < 0) return -1;
  }
  return end;
}
