'use client';
// The upload page's interactive part. A batch is one lease: picking or
// dropping files acquires it (through @attache/client), each file is staged
// under it with its own progress bar (the client sends it with
// XMLHttpRequest, whose progress counts bytes on the wire),
// the staged list is what the lease sees (read-your-writes), and Commit or
// Discard releases it. The committed list is the key's public state. With
// "Resumable uploads" on, files go through Uppy's tus plugin instead
// (lib/resumable.ts): a cut connection resumes where the server's bytes end.
import { createClient, isAttacheError, type AttacheClient, type ClientLease } from '@attache/client';
import type { Attachment } from '@attache/core';
import { useCallback, useEffect, useId, useRef, useState, type DragEvent } from 'react';
import { API_BASE_PATH } from '../lib/api-path';
import { formatBytes, isPreviewableImage } from '../lib/format';
import { leaseErrorMessage, uploadErrorMessage } from '../lib/messages';
import { ResumableUploadError, uploadResumable } from '../lib/resumable';
import { crc32Hex, downloadUrl } from '../lib/upload';

const OWNER = 'next-example page';

interface FileUpload {
  /** Local id for React keys (a file name may be picked twice). */
  id: number;
  name: string;
  size: number;
  sentBytes: number;
  state: 'checking' | 'uploading' | 'staged' | 'failed';
  error?: string;
}

type Notice = { kind: 'error' | 'success'; text: string };

export interface UploaderProps {
  /** The server's per-file limit, to tell people before they pick. */
  maxBytes: number;
}

export function Uploader({ maxBytes }: UploaderProps) {
  const client = useClient();
  const keyFieldId = useId();
  const ttlFieldId = useId();
  const [key, setKey] = useState('example/uploads');
  const [ttlSeconds, setTtlSeconds] = useState(300);
  const [resumable, setResumable] = useState(false);
  const resumableFieldId = useId();
  const [lease, setLease] = useState<ClientLease | null>(null);
  const [uploads, setUploads] = useState<FileUpload[]>([]);
  const [staged, setStaged] = useState<Attachment[]>([]);
  const [committed, setCommitted] = useState<Attachment[] | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const nextUploadId = useRef(1);
  const inputRef = useRef<HTMLInputElement>(null);
  const secondsLeft = useSecondsLeft(lease);

  const refreshCommitted = useCallback(
    async (forKey: string) => {
      if (!client) return;
      try {
        setCommitted(await client.listAttachments({ key: forKey }));
      } catch (error) {
        setCommitted([]);
        setNotice({
          kind: 'error',
          text: isAttacheError(error, 'invalid_key')
            ? `“${forKey}” is not a valid key: use lowercase letters, digits, “.”, “_” and “-”, with “/” between segments.`
            : `Could not list ${forKey}: ${describe(error)}`,
        });
      }
    },
    [client],
  );

  // Listed once typing pauses, not at every keystroke (a half-typed key such
  // as `orders/` is not a valid one).
  useEffect(() => {
    if (lease !== null) return;
    const timer = setTimeout(() => void refreshCommitted(key), 250);
    return () => clearTimeout(timer);
  }, [key, lease, refreshCommitted]);

  function endBatch() {
    setLease(null);
    setUploads([]);
    setStaged([]);
  }

  async function addFiles(files: File[]) {
    if (!client || files.length === 0) return;
    setNotice(null);
    setBusy(true);
    let current = lease;
    try {
      if (current === null) {
        try {
          current = await client.acquire({ key, ttlSeconds, owner: OWNER });
        } catch (error) {
          const leaseMessage = isAttacheError(error) ? leaseErrorMessage(error.code) : undefined;
          setNotice({ kind: 'error', text: leaseMessage ?? `Could not start a batch on ${key}: ${describe(error)}` });
          return;
        }
        setLease(current);
      }
      const batch = files.map((file) => ({ file, id: nextUploadId.current++ }));
      setUploads((previous) => [...previous, ...batch.map(({ file, id }): FileUpload => ({ id, name: file.name, size: file.size, sentBytes: 0, state: 'checking' }))]);
      const update = (id: number, change: Partial<FileUpload>) =>
        setUploads((previous) => previous.map((upload) => (upload.id === id ? { ...upload, ...change } : upload)));
      const leaseForUploads = current;
      let leaseLost: string | undefined;
      await Promise.all(
        batch.map(async ({ file, id }) => {
          if (resumable) {
            update(id, { state: 'uploading' });
            try {
              await uploadResumable(leaseForUploads, file, (sentBytes) => update(id, { sentBytes }));
              update(id, { state: 'staged', sentBytes: file.size });
            } catch (error) {
              const { code, detail } = error instanceof ResumableUploadError ? { code: error.code, detail: error.message } : { code: 'network', detail: describe(error) };
              leaseLost ??= leaseErrorMessage(code);
              update(id, { state: 'failed', error: uploadErrorMessage(file.name, file.size, code, detail, maxBytes) });
            }
            return;
          }
          const expectedCrc32 = await crc32Hex(file);
          update(id, { state: 'uploading' });
          try {
            await leaseForUploads.attach({
              name: file.name,
              body: file,
              contentType: file.type || 'application/octet-stream',
              expectedCrc32,
              onProgress: ({ sentBytes }) => update(id, { sentBytes }),
            });
            update(id, { state: 'staged', sentBytes: file.size });
          } catch (error) {
            // No answer at all (fetch's TypeError): the connection closed first.
            const { code, detail } = isAttacheError(error) ? { code: error.code as string, detail: error.message } : { code: 'network', detail: 'the connection closed before an answer arrived' };
            leaseLost ??= leaseErrorMessage(code);
            update(id, { state: 'failed', error: uploadErrorMessage(file.name, file.size, code, detail, maxBytes) });
          }
        }),
      );
      if (leaseLost !== undefined) {
        setNotice({ kind: 'error', text: leaseLost });
        endBatch();
        return;
      }
      setStaged(await leaseForUploads.list());
    } catch (error) {
      const leaseMessage = isAttacheError(error) ? leaseErrorMessage(error.code) : undefined;
      setNotice({ kind: 'error', text: leaseMessage ?? describe(error) });
      if (leaseMessage !== undefined) endBatch();
    } finally {
      setBusy(false);
      if (inputRef.current) inputRef.current.value = '';
    }
  }

  async function release(rollback: boolean) {
    if (!lease) return;
    setBusy(true);
    const count = staged.length;
    try {
      await lease.release({ rollback });
      setNotice(
        rollback
          ? { kind: 'success', text: `Discarded ${plural(count, 'staged file')}; nothing of the batch was committed.` }
          : { kind: 'success', text: `Committed ${plural(count, 'file')} to ${lease.key}.` },
      );
      endBatch();
    } catch (error) {
      const code = isAttacheError(error) ? error.code : undefined;
      const leaseMessage = code === undefined ? undefined : leaseErrorMessage(code);
      setNotice({ kind: 'error', text: leaseMessage ?? `Could not ${rollback ? 'discard' : 'commit'} the batch: ${describe(error)}` });
      // The lease is gone (expired or taken over) either way: nothing to release any more.
      if (leaseMessage !== undefined) endBatch();
    } finally {
      setBusy(false);
    }
  }

  function onDrop(event: DragEvent<HTMLLabelElement>) {
    event.preventDefault();
    setDragging(false);
    if (!busy) void addFiles([...event.dataTransfer.files]);
  }

  const failed = uploads.filter((upload) => upload.state === 'failed');
  return (
    <>
      <section aria-labelledby="batch-heading">
        <h2 id="batch-heading">New batch</h2>
        <div className="fields">
          <label htmlFor={keyFieldId}>Key</label>
          <input id={keyFieldId} value={key} disabled={lease !== null} onChange={(event) => {
              setKey(event.target.value);
              setNotice(null);
            }} spellCheck={false} />
          <label htmlFor={ttlFieldId}>Lease length (seconds)</label>
          <input
            id={ttlFieldId}
            type="number"
            min={1}
            max={604800}
            value={ttlSeconds}
            disabled={lease !== null}
            onChange={(event) => setTtlSeconds(Number(event.target.value) || 1)}
          />
          <label htmlFor={resumableFieldId}>Resumable uploads (tus)</label>
          <input id={resumableFieldId} type="checkbox" checked={resumable} disabled={busy} onChange={(event) => setResumable(event.target.checked)} />
        </div>
        <label
          className={`dropzone${dragging ? ' dragging' : ''}`}
          onDragOver={(event) => {
            event.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
        >
          <input ref={inputRef} className="visually-hidden" type="file" multiple disabled={busy || !client} onChange={(event) => void addFiles([...(event.target.files ?? [])])} />
          <span>
            <strong>Choose files</strong> or drop them here. Up to {formatBytes(maxBytes)} each.
          </span>
        </label>
        {lease && (
          <p className="lease" data-testid="lease">
            Lease on <code>{lease.key}</code> (fencing token {lease.fencingToken}):{' '}
            {secondsLeft > 0 ? `expires in ${secondsLeft} s` : 'expired'}.
          </p>
        )}
      </section>

      <div role="status" aria-live="polite" className="notice-slot">
        {notice?.kind === 'success' && <p className="notice success">{notice.text}</p>}
      </div>
      <div role="alert" className="notice-slot">
        {notice?.kind === 'error' && <p className="notice error">{notice.text}</p>}
        {failed.map((upload) => (
          <p key={upload.id} className="notice error">
            {upload.error}
          </p>
        ))}
      </div>

      {uploads.length > 0 && (
        <section aria-labelledby="uploads-heading">
          <h2 id="uploads-heading">Uploads</h2>
          <ul className="uploads">
            {uploads.map((upload) => (
              <UploadRow key={upload.id} upload={upload} />
            ))}
          </ul>
        </section>
      )}

      {lease && (
        <section aria-labelledby="staged-heading">
          <h2 id="staged-heading">Staged under the lease</h2>
          {staged.length === 0 ? (
            <p>Nothing staged yet.</p>
          ) : (
            <ul className="files" aria-label="Staged files">
              {staged.map((attachment) => (
                <li key={attachment.id}>
                  <span className="name">{attachment.name}</span> <span className="meta">{formatBytes(attachment.size)}</span>
                </li>
              ))}
            </ul>
          )}
          <p className="muted">Only this lease sees these files until you commit.</p>
          <div className="actions">
            <button type="button" onClick={() => void release(false)} disabled={busy}>
              Commit
            </button>
            <button type="button" className="secondary" onClick={() => void release(true)} disabled={busy}>
              Discard
            </button>
          </div>
        </section>
      )}

      <section aria-labelledby="committed-heading">
        <h2 id="committed-heading">
          Committed on <code>{key}</code>
        </h2>
        {committed === null ? (
          <p>Loading…</p>
        ) : committed.length === 0 ? (
          <p>No committed files yet.</p>
        ) : (
          <ul className="files" aria-label="Committed files">
            {committed.map((attachment) => (
              <CommittedRow key={attachment.id} attachment={attachment} />
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

function UploadRow({ upload }: { upload: FileUpload }) {
  const percent = upload.size === 0 ? 100 : Math.floor((upload.sentBytes / upload.size) * 100);
  const label = `Upload of ${upload.name}`;
  return (
    <li className={`upload ${upload.state}`}>
      <span className="name">{upload.name}</span>
      <progress aria-label={label} value={upload.sentBytes} max={Math.max(upload.size, 1)} />
      <span className="percent">{percent} %</span>
      <span className="state">{STATE_LABELS[upload.state]}</span>
    </li>
  );
}

const STATE_LABELS: Record<FileUpload['state'], string> = {
  checking: 'computing checksum',
  uploading: 'uploading',
  staged: 'staged',
  failed: 'failed',
};

function CommittedRow({ attachment }: { attachment: Attachment }) {
  const url = downloadUrl(attachment);
  return (
    <li>
      {isPreviewableImage(attachment.contentType) && (
        // Served by our own API; next/image would proxy it through its optimizer for nothing.
        <img src={url} alt={attachment.name} className="preview" />
      )}
      <a href={url} download={attachment.name}>
        {attachment.name}
      </a>{' '}
      <span className="meta">
        {formatBytes(attachment.size)}, {attachment.contentType}
      </span>
    </li>
  );
}

/** The client exists in the browser only (it needs the page's origin). */
function useClient(): AttacheClient | null {
  const [client, setClient] = useState<AttacheClient | null>(null);
  useEffect(() => setClient(createClient({ baseUrl: new URL(API_BASE_PATH, window.location.origin).href })), []);
  return client;
}

/** Seconds until the lease's expiry as the server announced it, ticking. */
function useSecondsLeft(lease: ClientLease | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!lease) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [lease]);
  if (!lease) return 0;
  // The API announces the expiry in whole seconds, rounded down: the lease
  // may live up to a second past it, and "expired" must not be said early.
  const expiresBy = lease.expiresAt.getTime() + 1000;
  return Math.max(0, Math.ceil((expiresBy - now) / 1000));
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function describe(error: unknown): string {
  if (isAttacheError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
