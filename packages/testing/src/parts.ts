/**
 * One part as an iterable (`lease.attachAll(asIterable(part))`): the engine
 * cannot tell it is the only one, so it stages its blob and promotes it after
 * the commit. A part known to be alone (`attach`, an array of one) goes
 * straight to its committed path, with nothing to promote: tests of staging
 * and promotion use this.
 */
export function* asIterable<T>(part: T): Generator<T> {
  yield part;
}
