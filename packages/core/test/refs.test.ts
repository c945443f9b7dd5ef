import { describe, expect, it } from 'vitest';
import { isAttacheError, isAttachmentRef, parseAttachmentRef, type AttachmentRef } from '@attache/core';

describe('attachment refs', () => {
  describe('parseAttachmentRef', () => {
    it('reads a ref loaded as a plain string into a typed ref and its id', () => {
      const stored: string = 'attachment://0190b6e0-0000-7000-8000-000000000000';
      const { ref, attachmentId } = parseAttachmentRef(stored);
      const typed: AttachmentRef = ref;
      expect(typed).toBe(stored);
      expect(attachmentId).toBe('0190b6e0-0000-7000-8000-000000000000');
    });

    it.each(['', 'attachment://', 'attachment://a/b', 'attachment://a?b', 'attachment://a b', 'file://x', '0190b6e0', 42, null])(
      'refuses %j with invalid_ref',
      (value) => {
        let error: unknown;
        try {
          parseAttachmentRef(value);
        } catch (caught) {
          error = caught;
        }
        expect(isAttacheError(error, 'invalid_ref')).toBe(true);
      },
    );
  });

  describe('isAttachmentRef', () => {
    it('narrows a string to AttachmentRef when it is one', () => {
      const value: unknown = 'attachment://abc';
      expect(isAttachmentRef(value)).toBe(true);
      if (isAttachmentRef(value)) {
        const typed: AttachmentRef = value;
        expect(typed).toBe('attachment://abc');
      }
      expect(isAttachmentRef('attachment://')).toBe(false);
      expect(isAttachmentRef('abc')).toBe(false);
      expect(isAttachmentRef(undefined)).toBe(false);
    });
  });
});
