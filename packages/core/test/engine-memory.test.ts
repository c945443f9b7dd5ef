import { describeAttachmentEngine, withInlineBlobs } from '../../testing/src/index.js';
import { memoryBlobs, memoryMetadata } from '../src/index.js';

describeAttachmentEngine('memory', {
  create: async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs() }),
});

describeAttachmentEngine('memory, encrypted at rest', {
  create: async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs() }),
  storeOptions: { encryption: { keys: { k1: new Uint8Array(32).fill(7) }, activeKeyId: 'k1' } },
});

describeAttachmentEngine('memory, small blobs inline', withInlineBlobs({
  create: async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs() }),
}));
