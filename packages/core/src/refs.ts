// `attachment://<id>` refs: the one place that reads and checks them.
// Documents store refs as plain strings; these helpers turn such a string
// back into a typed `AttachmentRef` without a cast.
import { AttacheError } from './errors.js';
import type { AttachmentRef } from './seed-interface.js';

const REF_PREFIX = 'attachment://';
// An id is one path-free token: no `/`, query, fragment or whitespace.
const REF = /^attachment:\/\/([^/?#\s]+)$/;

/** True when `value` is a well-formed `attachment://<id>` ref. */
export function isAttachmentRef(value: unknown): value is AttachmentRef {
  return typeof value === 'string' && REF.test(value);
}

/**
 * Reads an `attachment://<id>` ref (e.g. a string loaded from a database).
 * Throws `AttacheError` `invalid_ref` when it is malformed.
 */
export function parseAttachmentRef(value: unknown): { ref: AttachmentRef; attachmentId: string } {
  const match = typeof value === 'string' ? REF.exec(value) : null;
  if (!match) throw new AttacheError('invalid_ref', 'ref must look like attachment://<id>');
  const attachmentId = match[1]!;
  return { ref: `${REF_PREFIX}${attachmentId}`, attachmentId };
}

/**
 * The attachment id that `stat` looks up: a ref (`attachment://<id>`, checked
 * as `parseAttachmentRef` does) or a bare id, taken as given.
 */
export function attachmentIdOf(refOrId: string): string {
  if (typeof refOrId !== 'string') throw new AttacheError('invalid_ref', 'attachment id must be a string');
  if (refOrId.startsWith(REF_PREFIX)) return parseAttachmentRef(refOrId).attachmentId;
  return refOrId;
}
