// Reads without a lease: committed state only, by key and name or by id.
import { findVisible, listVisible, openRow, toAttachment } from './attachments.js';
import type { EngineContext } from './engine-context.js';
import { AttacheError } from './errors.js';
import { checkKey, checkName, checkNamespace } from './names.js';
import type { AttachmentRow } from './ports.js';
import type { AttachmentStore } from './types.js';

type PublicSelector = { namespace?: string; key?: string; name?: string; id?: string };

/** The arguments are checked here, before any read: key, then name or id. */
function finder(engine: EngineContext, selector: PublicSelector): () => Promise<AttachmentRow | undefined> {
  if (selector.key === undefined || selector.key === '') {
    const { id } = selector;
    if (id === undefined) throw new AttacheError('missing_key', 'key is required');
    return () => engine.metadata.transaction((tx) => tx.getCommittedById(id));
  }
  const scope = { namespace: checkNamespace(selector.namespace), key: checkKey(selector.key) };
  if (selector.name !== undefined) {
    const name = checkName(selector.name);
    return () => engine.metadata.transaction((tx) => findVisible(tx, scope, { name }, null));
  }
  const { id } = selector;
  if (id === undefined) throw new AttacheError('missing_name', 'name or id is required');
  return () => engine.metadata.transaction((tx) => findVisible(tx, scope, { id }, null));
}

export function committedReads(
  engine: EngineContext,
): Pick<AttachmentStore, 'listAttachments' | 'getAttachment' | 'openAttachment'> {
  return {
    async listAttachments(scope) {
      const checked = { namespace: checkNamespace(scope.namespace), key: checkKey(scope.key) };
      const rows = await engine.metadata.transaction((tx) => listVisible(tx, checked, null));
      return rows.map(toAttachment);
    },
    async getAttachment(selector) {
      const row = await finder(engine, selector)();
      if (!row) throw new AttacheError('attachment_not_found', 'attachment not found');
      return toAttachment(row);
    },
    async openAttachment(selector, openOptions) {
      return openRow(engine, finder(engine, selector), openOptions);
    },
  };
}
