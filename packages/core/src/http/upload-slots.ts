// The handler's limit on uploads streaming at once (`maxConcurrentUploads`):
// created by the handler, taken by the upload route.
import { AttacheError } from '../errors.js';

/** Counts uploads in flight against the handler's limit. */
export class UploadSlots {
  #inFlight = 0;
  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new TypeError('maxConcurrentUploads must be a positive number');
  }

  /** Takes a slot, or refuses with 503 `unavailable`; call the returned function when the upload ends. */
  take(): () => void {
    if (this.#inFlight >= this.limit) {
      throw new AttacheError('unavailable', `the server is taking ${this.limit} uploads already; retry shortly`, {
        retryAfterSeconds: 1,
      });
    }
    this.#inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight -= 1;
    };
  }
}
