// Core's tests cannot import @attache/testing (it depends on core); this is
// its `asIterable`: one part as an iterable, so the engine stages its blob
// and promotes it after the commit (a part known to be alone goes straight
// to its committed path).
export function* asIterable<T>(part: T): Generator<T> {
  yield part;
}
