import { v7 as uuidv7 } from 'uuid';
import { AttacheError } from './errors.js';

/** Time-ordered ids (UUIDv7) for leases, transactions, attachments and blob versions. */
export function newId(): string {
  return uuidv7();
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a string has the shape of an id made by `newId()` (cheap pre-check before a look-up). */
export function looksLikeId(value: string): boolean {
  return ID.test(value);
}

const TXN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Caller-chosen transaction ids end up in blob paths, so they are kept path-safe. */
export function checkTxnId(txnId: string): string {
  if (!TXN_ID.test(txnId)) throw new AttacheError('invalid_body', 'txn_id must be 1–64 characters of A-Z a-z 0-9 _ -');
  return txnId;
}
