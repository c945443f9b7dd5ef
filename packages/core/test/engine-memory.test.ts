import { describeAttachmentEngine } from '../../testing/src/index.js';
import { memoryBlobs, memoryMetadata } from '../src/index.js';

describeAttachmentEngine('memory', {
  create: async () => ({ metadata: memoryMetadata(), blobs: memoryBlobs() }),
});
