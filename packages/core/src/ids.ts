import { v7 as uuidv7 } from 'uuid';

/** Time-ordered ids (UUIDv7) for leases, transactions, attachments and blob versions. */
export function newId(): string {
  return uuidv7();
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a string has the shape of an id made by `newId()` (cheap pre-check before a look-up). */
export function looksLikeId(value: string): boolean {
  return ID.test(value);
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Whether a caller-chosen id is a UUIDv7 as `newId()` writes them (lowercase, version 7, RFC 9562 variant). */
export function isUuidV7(value: unknown): value is string {
  return typeof value === 'string' && UUID_V7.test(value);
}
