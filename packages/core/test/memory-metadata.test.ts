// The shared port suite lives in @attache/testing, which depends on core; a
// relative import keeps core free of a workspace dependency cycle.
import { describeMetadataStore } from '../../testing/src/index.js';
import { memoryMetadata } from '../src/memory/metadata.js';

describeMetadataStore('memory', () => memoryMetadata());
