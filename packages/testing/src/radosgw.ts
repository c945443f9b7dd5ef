// A throwaway Ceph cluster serving S3 (RADOS Gateway) for tests: one monitor,
// one memstore OSD and radosgw (beast frontend on 127.0.0.1), with a user of
// known keys and one bucket, all under a new temp directory. No containers:
// the daemons are Debian's (`apt-get install --no-install-recommends ceph-mon
// ceph-osd radosgw ceph-common`, Ceph 16.2 "Pacific" on Debian 12).
//
// One cluster serves a whole test run: `radosgw-global-setup.ts` starts it
// and provides its connection; test files call `describeRadosgw`, which skips
// when there is none, except under CI (`$CI` set), where it fails instead.
//
// Every step has a bounded wait; a failure stops what was started, deletes
// the directory and reports the daemon's log tail. Only the processes this
// module spawned are ever signalled.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, inject, it } from 'vitest';
import { freePort } from './free-port.js';

/** How to reach an S3 bucket (a plain object, so vitest can hand it to test files). */
export interface S3Connection {
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's radosgw bucket, or null when there is none. */
    radosgw: S3Connection | null;
    /** Why there is no radosgw, when `radosgw` is null. */
    radosgwMissingReason: string;
  }
}

/** The environment that points `attache serve` at `s3`, its keys under `prefix` ("" or ending with "/"). */
export function attacheS3Environment(s3: S3Connection, prefix = ''): Record<string, string> {
  return {
    ATTACHE_S3_BUCKET: s3.bucket,
    ATTACHE_S3_ENDPOINT: s3.endpoint,
    ATTACHE_S3_REGION: s3.region,
    ATTACHE_S3_PREFIX: prefix,
    ATTACHE_S3_FORCE_PATH_STYLE: 'true',
    ATTACHE_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    ATTACHE_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
  };
}

export interface RunningRadosgw extends S3Connection {
  /** The cluster's directory (configuration, keyring, logs, monitor store). */
  directory: string;
  /** Process ids of the monitor, the OSD and radosgw. */
  pids: number[];
  /** Milliseconds from the first command to a bucket that answers. */
  startupMs: number;
  /** Stops the daemons (radosgw first) and deletes the directory. */
  stop(): Promise<void>;
}

export interface RadosgwOptions {
  /** Port of radosgw on 127.0.0.1. Default: a free one. */
  port?: number;
  /** Bucket to create. Default "attache-test". */
  bucket?: string;
  /** Capacity of the memstore OSD, which keeps every object in RAM. Default 2 GiB. */
  memoryBytes?: number;
  /** Bound on each startup step (a daemon coming up, a command). Default 30 s. */
  stepTimeoutMs?: number;
  /**
   * The process whose exit stops the cluster if `stop()` was never called
   * (a test run killed mid-way). Default: this process.
   */
  ownerPid?: number;
}

/** The programs the cluster needs, in Debian's packages ceph-mon, ceph-osd, radosgw and ceph-common. */
const PROGRAMS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'] as const;

/** The directory holding the Ceph programs, or the names of those missing from it. */
export function findCephBinaries(directory = '/usr/bin'): { bin: string } | { missing: string[] } {
  const missing = PROGRAMS.filter((program) => !existsSync(join(directory, program)));
  return missing.length === 0 ? { bin: directory } : { missing };
}

export async function startRadosgw(options: RadosgwOptions = {}): Promise<RunningRadosgw> {
  const found = findCephBinaries();
  if (!('bin' in found)) throw new Error(`Ceph programs not found in /usr/bin: ${found.missing.join(', ')}`);
  const { bin } = found;
  const bucket = options.bucket ?? 'attache-test';
  const stepTimeoutMs = options.stepTimeoutMs ?? 30_000;
  const started = performance.now();
  // Loading the SDK takes a second; it happens while the daemons start.
  const sdk = import('@aws-sdk/client-s3');
  sdk.catch(() => {}); // awaited (and reported) in createBucket
  const directory = mkdtempSync(join(tmpdir(), 'attache-rgw-'));
  const pidFile = join(directory, 'daemons.pid');
  writeFileSync(pidFile, '');
  const daemons: Daemon[] = [];
  // Commands still running when startup fails (radosgw-admin waits for the
  // cluster for as long as it is allowed to) are stopped with the daemons.
  const commands = new Set<ChildProcess>();
  const watchdog = stopWhenGone(options.ownerPid ?? process.pid, directory);
  const stopAll = async () => {
    watchdog.kill();
    for (const command of commands) command.kill('SIGKILL');
    // radosgw first: it hangs on exit once the monitor or the OSD are gone.
    // SIGKILL throughout: the data is thrown away, a graceful stop costs
    // seconds, and the memstore OSD writes its whole RAM to disk on SIGTERM.
    for (const daemon of [...daemons].reverse()) await daemon.kill();
    rmSync(directory, { recursive: true, force: true });
  };

  try {
    const [monPort, rgwPort] = [await freePort(), options.port ?? (await freePort())];
    const fsid = randomUUID();
    const conf = join(directory, 'ceph.conf');
    const keyring = join(directory, 'keyring');
    writeFileSync(conf, cephConf({ directory, fsid, monPort, rgwPort, memoryBytes: options.memoryBytes ?? 2 * 1024 ** 3 }));
    const command = (program: string, args: string[], log?: string) =>
      runBounded(join(bin, program), ['-c', conf, ...args], stepTimeoutMs, log === undefined ? [] : [join(directory, log)], {
        commands,
        pidFile,
      });

    // One keyring for every daemon and client, written here rather than by
    // four runs of ceph-authtool (a second). Entries given to `ceph-mon --mkfs`
    // are in the monitor's auth database from the start.
    writeFileSync(keyring, keyringFile({
      'mon.': { mon: 'allow *' },
      'client.admin': { mon: 'allow *', osd: 'allow *', mgr: 'allow *' },
      'osd.0': { mon: 'allow profile osd', osd: 'allow *' },
      'client.rgw': { mon: 'allow rw', osd: 'allow rwx' },
    }));
    const monmap = join(directory, 'monmap');
    await command('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap]);
    mkdirSync(join(directory, 'mon'));
    await command('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring], 'mon.a.log');
    daemons.push(startDaemon('monitor', join(bin, 'ceph-mon'), ['-c', conf, '-i', 'a', '-f'], directory, 'mon.a', pidFile));

    // Both wait for the monitor to answer. memstore crashes in --mkfs unless
    // its data directory exists.
    const osdUuid = randomUUID();
    mkdirSync(join(directory, 'osd'));
    await Promise.all([
      command('ceph', ['--connect-timeout', String(Math.ceil(stepTimeoutMs / 1000)), 'osd', 'new', osdUuid, '0'], 'mon.a.log'),
      command('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid], 'osd.0.log'),
    ]);
    daemons.push(startDaemon('OSD', join(bin, 'ceph-osd'), ['-c', conf, '-i', '0', '-f'], directory, 'osd.0', pidFile));

    // radosgw creates its pools once the OSD is up; the user can be created meanwhile.
    const radosgw = startDaemon('radosgw', join(bin, 'radosgw'), ['-c', conf, '-n', 'client.rgw', '-f'], directory, 'client.rgw', pidFile);
    daemons.push(radosgw);
    const credentials = {
      accessKeyId: `ATTACHE${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(24).toString('base64url'),
    };
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await Promise.all([
      command('radosgw-admin', [
        'user', 'create', '--uid=attache', '--display-name=attache tests',
        `--access-key=${credentials.accessKeyId}`, `--secret=${credentials.secretAccessKey}`,
      ], 'osd.0.log'),
      waitUntil(
        stepTimeoutMs,
        daemons,
        async () => (await fetch(endpoint, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok === true,
        'radosgw to answer HTTP',
      ),
    ]);
    await createBucket(await sdk, { endpoint, region: 'us-east-1', bucket, credentials }, stepTimeoutMs, daemons);

    return {
      endpoint,
      region: 'us-east-1',
      bucket,
      credentials,
      directory,
      pids: daemons.map((daemon) => daemon.pid),
      startupMs: Math.round(performance.now() - started),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

interface CephConfInput {
  directory: string;
  fsid: string;
  monPort: number;
  rgwPort: number;
  memoryBytes: number;
}

/** Settings for a one-node, one-replica, test-only cluster; why each is there is said beside it. */
function cephConf({ directory, fsid, monPort, rgwPort, memoryBytes }: CephConfInput): string {
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monPort}]
public addr = 127.0.0.1
ms bind ipv6 = false
keyring = ${directory}/keyring
run dir = ${directory}
admin socket = ${directory}/$name.asok
pid file = ${directory}/$name.pid
log file = ${directory}/$name.log
# Clients authenticate with cephx; a fresh cluster still lets them reclaim a global id.
auth allow insecure global id reclaim = true
# Never stop on a nearly full host disk.
mon data avail warn = 1
mon data avail crit = 0
# One OSD: one replica, small pools, placement across OSDs rather than hosts.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0

[mon]
mon data = ${directory}/mon
# Commit cluster map changes at once: startup ~1.5 s instead of ~13 s.
paxos propose interval = 0.01
paxos min wait = 0.001

[osd]
osd data = ${directory}/osd
# Objects in RAM (test-only backend, ready in about a second), capped.
osd objectstore = memstore
memstore device bytes = ${memoryBytes}

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 64
# Free the data of deleted objects within seconds, not hours.
rgw gc obj min wait = 5
rgw gc processor period = 10
`;
}

interface Daemon {
  pid: number;
  name: string;
  /** Set once the process has exited. */
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The fatal error it reported on its console, if any: a daemon may hang on its way out after one. */
  fatalError(): string | undefined;
  /** The last lines of its log and console output. */
  logTail(): string;
  kill(): Promise<void>;
}

/**
 * What radosgw prints when it gives up during start-up (the frontend's port
 * taken, say). It should exit then, and does within milliseconds on an idle
 * machine; under CI's load it had not exited 30 s later, and `radosgw-admin
 * user create`, waiting on notifies to it, timed out first.
 */
const FATAL_CONSOLE_LINE = /^.*\bERROR: failed initializing frontend.*$/m;

function startDaemon(name: string, program: string, args: string[], directory: string, logName: string, pidFile: string): Daemon {
  const outputFile = join(directory, `${logName}.out`);
  const output = openSync(outputFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(program, args, { stdio: ['ignore', output, output] });
  } finally {
    closeSync(output);
  }
  if (child.pid === undefined) throw new Error(`could not start the ${name} (${program})`);
  appendFileSync(pidFile, `${child.pid}\n`);
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const daemon: Daemon = {
    pid: child.pid,
    name,
    exited: undefined,
    logTail: () => [join(directory, `${logName}.log`), outputFile].map(tail).join('\n'),
    fatalError() {
      try {
        return FATAL_CONSOLE_LINE.exec(readFileSync(outputFile, 'utf8'))?.[0].trim();
      } catch {
        return undefined;
      }
    },
    async kill() {
      if (daemon.exited === undefined) child.kill('SIGKILL');
      await exit;
    },
  };
  child.once('exit', (code, signal) => {
    daemon.exited = { code, signal };
  });
  return daemon;
}

/**
 * Polls `ready` every 50 ms; fails after `timeoutMs`, or at once when a
 * daemon has exited or reported a fatal error, with its log tail.
 */
async function waitUntil(timeoutMs: number, daemons: Daemon[], ready: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const daemon of daemons) {
      if (daemon.exited !== undefined) {
        const { code, signal } = daemon.exited;
        throw new Error(`the ${daemon.name} exited (${signal ?? `code ${code}`}) while waiting for ${what}\n${daemon.logTail()}`);
      }
      const fatal = daemon.fatalError();
      if (fatal !== undefined) {
        throw new Error(`the ${daemon.name} failed ("${fatal}") while waiting for ${what}\n${daemon.logTail()}`);
      }
    }
    if (await ready()) return;
    if (performance.now() > deadline) {
      throw new Error(`no ${what} after ${timeoutMs} ms\n${daemons.map((daemon) => daemon.logTail()).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs a command with a time limit; a failure carries its output and the
 * tails of `logs`. While it runs it is in `commands` (so a failed startup can
 * stop it) and in the pid file (so the watchdog can).
 */
function runBounded(
  program: string,
  args: string[],
  timeoutMs: number,
  logs: string[],
  tracking: { commands: Set<ChildProcess>; pidFile: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      tracking.commands.delete(child);
      if (error === null) return resolve(stdout);
      const why = error.killed ? `did not finish within ${timeoutMs} ms (or was stopped)` : 'failed';
      reject(new Error(`${[program, ...args].join(' ')} ${why}\n${stdout}${stderr}${logs.map(tail).join('\n')}`, { cause: error }));
    });
    tracking.commands.add(child);
    if (child.pid !== undefined) appendFileSync(tracking.pidFile, `${child.pid}\n`);
  });
}

/** CreateBucket, signed with SigV4 by the AWS SDK. */
async function createBucket(
  { CreateBucketCommand, S3Client }: typeof import('@aws-sdk/client-s3'),
  connection: S3Connection,
  timeoutMs: number,
  daemons: Daemon[],
): Promise<void> {
  const client = new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: connection.credentials,
    forcePathStyle: true,
    maxAttempts: 1,
  });
  try {
    // The user may take a moment to be visible to radosgw (its metadata cache).
    let lastError: unknown;
    const created = async () => {
      try {
        await client.send(new CreateBucketCommand({ Bucket: connection.bucket }));
        return true;
      } catch (error) {
        lastError = error;
        return false;
      }
    };
    try {
      await waitUntil(timeoutMs, daemons, created, `bucket ${connection.bucket}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nlast CreateBucket error: ${String(lastError)}`, { cause: error });
    }
  } finally {
    client.destroy();
  }
}

/** A keyring with a fresh key and the given capabilities per entity. */
function keyringFile(entities: Record<string, Record<string, string>>): string {
  return Object.entries(entities)
    .map(([name, caps]) => {
      const capLines = Object.entries(caps).map(([service, cap]) => `\tcaps ${service} = "${cap}"\n`);
      return `[${name}]\n\tkey = ${cephSecret()}\n${capLines.join('')}`;
    })
    .join('');
}

/** A Ceph secret as `ceph-authtool --gen-print-key` makes it: type AES (1), creation time, length 16, 16 random bytes. */
function cephSecret(): string {
  const secret = Buffer.alloc(28);
  const now = Date.now();
  secret.writeUInt16LE(1, 0);
  secret.writeUInt32LE(Math.floor(now / 1000), 2);
  secret.writeUInt32LE((now % 1000) * 1_000_000, 6);
  secret.writeUInt16LE(16, 10);
  randomBytes(16).copy(secret, 12);
  return secret.toString('base64');
}

function tail(file: string, lines = 25): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return `(no ${file})`;
  }
  return `--- last lines of ${file}:\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
}

/**
 * The daemons are our children, and they outlive a test run that is killed
 * (no teardown). A detached shell polls for the owner process and, once it is
 * gone, SIGKILLs the daemons listed in the cluster's pid file (only those
 * whose command line still names the cluster's directory) and deletes it.
 */
function stopWhenGone(ownerPid: number, directory: string): ChildProcess {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'for pid in $(cat "$2/daemons.pid" 2>/dev/null); do',
    '  if tr "\\0" " " < /proc/$pid/cmdline 2>/dev/null | grep -qF "$2/"; then kill -9 "$pid"; fi',
    'done',
    'rm -rf "$2"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'attache-rgw-watchdog', String(ownerPid), directory], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

/**
 * `describe` for tests that need S3 on radosgw; `body` gets the bucket. Without
 * a cluster the block is skipped, or, under CI, replaced by one failing test
 * that says why.
 */
export function describeRadosgw(name: string, body: (s3: S3Connection) => void): void {
  const connection = inject('radosgw') ?? null;
  if (connection === null && process.env.CI) {
    const reason = inject('radosgwMissingReason') ?? 'the radosgw global setup did not run';
    describe(name, () => {
      it('has a radosgw (CI must install Ceph)', () => {
        throw new Error(`S3 tests on radosgw cannot run: ${reason}`);
      });
    });
    return;
  }
  // A skipped block is still collected: it gets a connection that is never used.
  const unused: S3Connection = { endpoint: '', region: '', bucket: '', credentials: { accessKeyId: '', secretAccessKey: '' } };
  describe.skipIf(connection === null)(name, () => body(connection ?? unused));
}
