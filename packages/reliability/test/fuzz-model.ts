// A model of what the server must hold, updated only from the answers the
// handler gives (so a request the fuzzer did not mean to be valid but that
// succeeded is accounted for too). Whatever a 200 claims is applied to the
// model; whatever the model can predict from earlier answers is asserted
// (a public list equals the committed state, a lease read equals committed
// overlaid by its transaction, a commit never happens for a doomed
// transaction, a held key is not granted twice).

export interface ModelEntry {
  id: string;
  sha256: string;
  size: number;
}

export interface ModelLease {
  leaseId: string;
  txnId: string;
  namespace: string;
  key: string;
  fencingToken: number;
  /** Milliseconds on the test's clock, computed exactly as the engine does. */
  expiresAt: number;
  ended: boolean;
}

export type TxnState = 'active' | 'doomed' | 'ended';

export interface ModelTxn {
  txnId: string;
  /** `doomed`: a lease of it expired, so it can only roll back. */
  state: TxnState;
  /** How an ended transaction ended, when a release the model saw ended it. */
  outcome?: 'committed' | 'rolled_back';
  leaseIds: Set<string>;
  /** scope → name → staged entry, or null for a staged delete. */
  overlay: Map<string, Map<string, ModelEntry | null>>;
}

export interface ScopeRef {
  namespace: string;
  key: string;
}

export function scopeId(scope: ScopeRef): string {
  return `${scope.namespace}\u0000${scope.key}`;
}

export function parseScopeId(id: string): ScopeRef {
  const [namespace = '', key = ''] = id.split('\u0000');
  return { namespace, key };
}

/** The JSON the handler sends for one attachment (the fields the model reads). */
export interface AttachmentWire {
  id: string;
  name: string;
  namespace: string;
  key: string;
  size: number;
  sha256: string;
}

export class HandlerModel {
  readonly committed = new Map<string, Map<string, ModelEntry>>();
  readonly leases = new Map<string, ModelLease>();
  readonly txns = new Map<string, ModelTxn>();
  /** Every scope any answer or request mentioned, checked at the end. */
  readonly touched = new Set<string>();
  /** Highest fencing token seen per scope: acquire must always increase it. */
  readonly fencing = new Map<string, number>();
  readonly violations: string[] = [];

  constructor(public clock: number) {}

  fail(message: string): void {
    this.violations.push(message);
  }

  /** Moves the clock; every transaction with a lease now expired is doomed (it can only roll back). */
  advance(milliseconds: number): void {
    this.clock += milliseconds;
    for (const lease of this.leases.values()) {
      const txn = this.txns.get(lease.txnId);
      if (!lease.ended && lease.expiresAt <= this.clock && txn?.state === 'active') txn.state = 'doomed';
    }
  }

  activeLeases(): ModelLease[] {
    return [...this.leases.values()].filter((lease) => !lease.ended && lease.expiresAt > this.clock);
  }

  committedOf(scope: ScopeRef): Map<string, ModelEntry> {
    let names = this.committed.get(scopeId(scope));
    if (names === undefined) {
      names = new Map();
      this.committed.set(scopeId(scope), names);
    }
    return names;
  }

  /** Committed state overlaid with one transaction's staged writes and deletes. */
  visible(scope: ScopeRef, txnId: string | undefined): Map<string, ModelEntry> {
    const result = new Map(this.committed.get(scopeId(scope)) ?? []);
    const overlay = txnId === undefined ? undefined : this.txns.get(txnId)?.overlay.get(scopeId(scope));
    for (const [name, entry] of overlay ?? []) {
      if (entry === null) result.delete(name);
      else result.set(name, entry);
    }
    return result;
  }

  private overlayOf(txn: ModelTxn, scope: ScopeRef): Map<string, ModelEntry | null> {
    let overlay = txn.overlay.get(scopeId(scope));
    if (overlay === undefined) {
      overlay = new Map();
      txn.overlay.set(scopeId(scope), overlay);
    }
    return overlay;
  }

  // ── Applying successful answers ──────────────────────────────────────────

  acquired(answer: { lease_id: string; txn_id: string; namespace: string; key: string; fencing_token: number }, ttlSeconds: number): void {
    const scope = { namespace: answer.namespace, key: answer.key };
    this.touched.add(scopeId(scope));
    const holder = [...this.leases.values()].find(
      (lease) =>
        !lease.ended &&
        lease.expiresAt > this.clock &&
        lease.namespace === scope.namespace &&
        lease.key === scope.key &&
        this.txns.get(lease.txnId)?.state === 'active',
    );
    if (holder) this.fail(`acquire granted ${scope.namespace}/${scope.key} while lease ${holder.leaseId} holds it`);
    const previous = this.fencing.get(scopeId(scope)) ?? 0;
    if (answer.fencing_token <= previous) this.fail(`fencing token ${answer.fencing_token} after ${previous} on ${scope.key}`);
    this.fencing.set(scopeId(scope), answer.fencing_token);

    let txn = this.txns.get(answer.txn_id);
    if (txn === undefined) {
      txn = { txnId: answer.txn_id, state: 'active', leaseIds: new Set(), overlay: new Map() };
      this.txns.set(txn.txnId, txn);
    } else if (txn.state !== 'active') {
      this.fail(`acquire joined transaction ${txn.txnId}, which is ${txn.state}`);
    }
    txn.leaseIds.add(answer.lease_id);
    this.leases.set(answer.lease_id, {
      leaseId: answer.lease_id,
      txnId: answer.txn_id,
      ...scope,
      fencingToken: answer.fencing_token,
      // Same arithmetic as the engine (now + ttl * 1000), so boundaries agree exactly.
      expiresAt: this.clock + ttlSeconds * 1000,
      ended: false,
    });
  }

  keptAlive(leaseId: string, ttlSeconds: number): void {
    const lease = this.liveLease(leaseId, 'keepalive');
    if (lease) lease.expiresAt = this.clock + ttlSeconds * 1000;
  }

  released(leaseId: string, rollback: boolean): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined || lease.ended) return; // idempotent release of an ended lease
    const txn = this.txns.get(lease.txnId);
    if (txn === undefined) return this.fail(`release of lease ${leaseId} whose transaction the model never saw`);
    const expired = lease.expiresAt <= this.clock;
    if (!rollback && (expired || txn.state !== 'active')) {
      this.fail(`release answered 200 (commit) for lease ${leaseId} of a ${expired ? 'expired lease' : txn.state} transaction`);
    }
    if (!rollback && txn.state === 'active') {
      for (const [id, overlay] of txn.overlay) {
        const names = this.committedOf(parseScopeId(id));
        for (const [name, entry] of overlay) {
          if (entry === null) names.delete(name);
          else names.set(name, entry);
        }
      }
    }
    txn.outcome = rollback ? 'rolled_back' : 'committed';
    this.endTxn(txn);
  }

  private endTxn(txn: ModelTxn): void {
    txn.state = 'ended';
    txn.overlay.clear();
    for (const id of txn.leaseIds) {
      const lease = this.leases.get(id);
      if (lease) lease.ended = true;
    }
  }

  staged(leaseId: string, attachments: readonly AttachmentWire[]): void {
    const lease = this.liveLease(leaseId, 'upload');
    if (lease === undefined) return;
    const txn = this.txns.get(lease.txnId)!;
    for (const attachment of attachments) {
      const scope = { namespace: attachment.namespace, key: attachment.key };
      if (scope.namespace !== lease.namespace || scope.key !== lease.key) {
        this.fail(`upload through lease on ${lease.key} answered an attachment of ${attachment.key}`);
      }
      this.overlayOf(txn, scope).set(attachment.name, { id: attachment.id, sha256: attachment.sha256, size: attachment.size });
    }
  }

  documentsCommitted(attachments: readonly AttachmentWire[]): void {
    for (const attachment of attachments) {
      const scope = { namespace: attachment.namespace, key: attachment.key };
      this.touched.add(scopeId(scope));
      const names = this.committedOf(scope);
      if (names.size > 0) this.fail(`document ${attachment.id} landed in key ${attachment.key}, which already had attachments`);
      names.set(attachment.name, { id: attachment.id, sha256: attachment.sha256, size: attachment.size });
    }
  }

  /** A staged delete by name or id answered `{deleted}`; checks it against the overlay. */
  deletedOne(leaseId: string, scope: ScopeRef, selector: { name: string } | { id: string }, deleted: boolean): void {
    const lease = this.liveLease(leaseId, 'delete');
    if (lease === undefined) return;
    const visible = this.visible(scope, lease.txnId);
    const name = 'name' in selector ? selector.name : [...visible].find(([, entry]) => entry.id === selector.id)?.[0];
    const present = name !== undefined && visible.has(name);
    if (present !== deleted) {
      this.fail(`delete of ${JSON.stringify(selector)} on ${scope.key} answered deleted=${deleted}, the model says ${present}`);
    }
    if (deleted && name !== undefined) this.overlayOf(this.txns.get(lease.txnId)!, scope).set(name, null);
  }

  deletedAll(leaseId: string, scope: ScopeRef, deleted: number): void {
    const lease = this.liveLease(leaseId, 'delete all');
    if (lease === undefined) return;
    const visible = this.visible(scope, lease.txnId);
    if (visible.size !== deleted) this.fail(`delete all on ${scope.key} answered ${deleted}, the model has ${visible.size}`);
    const overlay = this.overlayOf(this.txns.get(lease.txnId)!, scope);
    for (const name of visible.keys()) overlay.set(name, null);
  }

  /** A list answer must equal the model's view (public: committed; lease read: overlaid). */
  listed(scope: ScopeRef, leaseId: string | undefined, attachments: readonly AttachmentWire[]): void {
    this.touched.add(scopeId(scope));
    const txnId = leaseId === undefined ? undefined : this.liveLease(leaseId, 'lease read')?.txnId;
    if (leaseId !== undefined && txnId === undefined) return;
    const expected = this.visible(scope, txnId);
    const describe = (entries: Iterable<[string, { sha256: string; size: number }]>) =>
      [...entries].map(([name, entry]) => `${JSON.stringify(name)}:${entry.size}:${entry.sha256.slice(0, 8)}`).sort().join(', ');
    const got = describe(attachments.map((attachment) => [attachment.name, attachment] as [string, AttachmentWire]));
    const want = describe(expected);
    if (got !== want) {
      this.fail(`list of ${scope.namespace}/${scope.key} (${leaseId === undefined ? 'public' : 'lease read'}) is [${got}], model [${want}]`);
    }
  }

  /** The lease an answer of 200 proves alive; a 200 for a lease the model thinks ended or expired is a violation. */
  private liveLease(leaseId: string, what: string): ModelLease | undefined {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) {
      this.fail(`${what} succeeded with lease ${leaseId}, which no acquire answered`);
      return undefined;
    }
    if (lease.ended || lease.expiresAt <= this.clock) {
      this.fail(`${what} succeeded with lease ${leaseId}, which is ${lease.ended ? 'ended' : 'expired'}`);
      return undefined;
    }
    return lease;
  }
}
