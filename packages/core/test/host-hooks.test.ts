// Core has no process-level side effects: the host starts the sweeper's
// timer and decides what a crash point does (DESIGN.md "Layers").
import { afterEach, describe, expect, it, vi } from 'vitest';
import { asIterable } from './as-iterable.js';
import { createAttachmentStore, CRASH_POINTS, memoryBlobs, memoryMetadata, type CrashPoint } from '../src/index.js';

const bytes = (text: string) => new TextEncoder().encode(text);

afterEach(() => {
  vi.useRealTimers();
});

describe('sweeper timer', () => {
  it('is not started unless the host asks for one', async () => {
    vi.useFakeTimers();
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs() });
    expect(vi.getTimerCount()).toBe(0);
    await store.close();
  });

  it('runs sweep() every sweepIntervalSeconds when asked, and stops on close()', async () => {
    vi.useFakeTimers();
    const metadata = memoryMetadata();
    const transactions = vi.spyOn(metadata, 'transaction');
    const store = createAttachmentStore({ metadata, blobs: memoryBlobs(), sweepIntervalSeconds: 30 });
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(transactions).toHaveBeenCalled();
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('crash points', () => {
  it('are reported to the host hook in protocol order: upload, commit, promote', async () => {
    const reached: CrashPoint[] = [];
    const store = createAttachmentStore({ metadata: memoryMetadata(), blobs: memoryBlobs(), onCrashPoint: (point) => reached.push(point) });
    const lease = await store.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    await lease.release();
    // Promotion runs in the background, after the release answered.
    await store.settled();
    expect(reached).toEqual(['upload.after-blob', 'upload.after-row', 'commit.after-metadata', 'promote.after-copy', 'promote.after-row']);
    await store.close();
  });

  it('let the host stop the protocol at a point (a simulated crash); one sweep finishes the work', async () => {
    const metadata = memoryMetadata();
    const blobs = memoryBlobs();
    const crashAt: CrashPoint = 'commit.after-metadata';
    const crashing = createAttachmentStore({
      metadata,
      blobs,
      onCrashPoint: (point) => {
        if (point === crashAt) throw new Error(`crashed at ${point}`);
      },
    });
    const lease = await crashing.acquire({ key: 'k', ttlSeconds: 30, owner: 'o' });
    await lease.attachAll(asIterable({ name: 'a.txt', body: bytes('hello') }));
    await expect(lease.release()).rejects.toThrow('crashed at commit.after-metadata');

    const restarted = createAttachmentStore({ metadata, blobs });
    const report = await restarted.sweep();
    expect(report.promoted).toBe(1);
    const [attachment] = await restarted.listAttachments({ key: 'k' });
    expect(attachment).toMatchObject({ name: 'a.txt', size: 5 });
  });

  it('are a closed list the host can check a name against', () => {
    expect(CRASH_POINTS).toContain('sweep.after-garbage-delete');
    expect(new Set(CRASH_POINTS).size).toBe(CRASH_POINTS.length);
  });
});
