// Key rotation (`store.rotateKeys`) on the stacks `attache serve` runs with
// local files: SQLite and PostgreSQL metadata, each with real restarts (new
// port instances over the same database and blobs).
import { describeKeyRotation, describePostgres } from '@attache/testing';
import { postgresFsStack, sqliteFsStack } from './stacks.js';

describeKeyRotation('sqlite + fs', sqliteFsStack('attache-rotation-'));

describePostgres('PostgreSQL stack', (serverUrl) => {
  describeKeyRotation('postgres + fs', postgresFsStack(serverUrl, 'attache-rotation-'));
});
