// Validation of namespaces, keys and attachment names (API.md §2 "Names").
import { AttacheError } from './errors.js';
import type { AttachmentSelector } from './types.js';

export const DEFAULT_NAMESPACE = 'default';
const NAMESPACE = /^[a-z0-9._-]{1,128}$/;
const KEY_SEGMENT = /^[a-z0-9._-]+$/;
// `.staging` is reserved: earlier versions staged blobs under
// `<key>/.staging/<txn>/`, and such leftovers are still recognized (paths.ts).
const RESERVED_KEY_SEGMENTS = new Set(['.', '..', '.staging']);
const MAX_KEY_LENGTH = 128;
const MAX_NAME_LENGTH = 255;
// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function checkNamespace(namespace: string | undefined | null): string {
  if (namespace === undefined || namespace === null || namespace === '') return DEFAULT_NAMESPACE;
  if (!NAMESPACE.test(namespace) || namespace === '.' || namespace === '..') {
    throw new AttacheError('invalid_namespace', 'namespace must be 1–128 characters of a-z 0-9 . _ -, and not "." or ".."');
  }
  return namespace;
}

export function checkKey(key: string | undefined | null): string {
  if (key === undefined || key === null || key === '') throw new AttacheError('missing_key', 'key is required');
  if (key.length > MAX_KEY_LENGTH) throw new AttacheError('invalid_key', `key is longer than ${MAX_KEY_LENGTH} characters`);
  for (const segment of key.split('/')) {
    if (segment === '') throw new AttacheError('invalid_key', 'key has an empty segment');
    if (RESERVED_KEY_SEGMENTS.has(segment)) throw new AttacheError('invalid_key', `key segment "${segment}" is not allowed`);
    if (!KEY_SEGMENT.test(segment)) throw new AttacheError('invalid_key', 'key segments use only a-z 0-9 . _ -');
  }
  return key;
}

export function checkName(name: string | undefined | null): string {
  if (name === undefined || name === null || name === '') throw new AttacheError('missing_name', 'name is required');
  if ([...name].length > MAX_NAME_LENGTH) throw new AttacheError('invalid_name', `name is longer than ${MAX_NAME_LENGTH} characters`);
  if (name === '.' || name === '..') throw new AttacheError('invalid_name', 'name may not be "." or ".."');
  if (name.includes('/') || name.includes('\\')) throw new AttacheError('invalid_name', 'name may not contain / or \\');
  if (CONTROL.test(name)) throw new AttacheError('invalid_name', 'name may not contain control characters');
  if (LONE_SURROGATE.test(name)) throw new AttacheError('invalid_name', 'name is not well-formed Unicode');
  return name;
}

/** `photo.JPG` → `jpg`; no extension → null. */
export function extensionOf(fileName: string): string | null {
  const dot = fileName.lastIndexOf('.');
  if (dot <= 0 || dot === fileName.length - 1) return null;
  return fileName.slice(dot + 1).toLowerCase();
}

/** A selector from a caller: the name is checked; an id is looked up as given (an unknown one is not found). */
export function checkSelector(selector: AttachmentSelector): AttachmentSelector {
  return selector.name !== undefined ? { name: checkName(selector.name) } : selector;
}
