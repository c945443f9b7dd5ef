// Why `attache serve` could not start, in one line that says what to do.
// serve() throws a `StartupError` with such a message; bin.ts prints it after
// "attache: cannot start on <host>:<port> (<where data lives>): ".

/** A start failure whose message already explains the cause and the fix. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

const DATA_DIR_HINT = 'point --data-dir (or ATTACHE_DATA_DIR) at';
const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS']);
const NOT_A_DIRECTORY = new Set(['EEXIST', 'ENOTDIR']);

/**
 * Explains a failure to create or write `directory` (`what`: "data
 * directory", "blob directory"); other errors are returned unchanged.
 */
export function explainDirectoryError(error: unknown, what: string, directory: string): unknown {
  const code = errorCode(error);
  if (code !== undefined && NOT_A_DIRECTORY.has(code)) {
    return new StartupError(
      `${what} ${directory} is not a directory (a file is in the way, ${code}); remove that file, or ${DATA_DIR_HINT} a directory`,
      { cause: error },
    );
  }
  if (code !== undefined && NOT_WRITABLE.has(code)) {
    return new StartupError(
      `${what} ${directory} is not writable (${code}); make it writable for this user (uid ${process.getuid?.() ?? '?'}), or ${DATA_DIR_HINT} a writable directory`,
      { cause: error },
    );
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StartupError(`${what} ${directory} is on a full disk (${code}); free some space and start again`, { cause: error });
  }
  return error;
}

/** Explains a `listen()` failure; other errors are returned unchanged. */
export function explainListenError(error: unknown, host: string, port: number): unknown {
  const code = errorCode(error);
  const choose = 'choose another port with --port N or PORT=N (0 picks a free one)';
  if (code === 'EADDRINUSE') {
    return new StartupError(`port ${port} on ${host} is already in use (EADDRINUSE); stop what listens there, or ${choose}`, {
      cause: error,
    });
  }
  if (code === 'EACCES') {
    return new StartupError(`listening on port ${port} needs privileges this user lacks (EACCES); ${choose} above 1023`, {
      cause: error,
    });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new StartupError(`--host ${host} is not an address of this machine (${code}); use 127.0.0.1, 0.0.0.0 or one of its addresses`, {
      cause: error,
    });
  }
  return error;
}

/**
 * Explains why PostgreSQL could not be used at start: the driver's own
 * reason (refused, unknown host, authentication, missing database) and the
 * fix. The connection string's password never appears: pg's messages do not
 * carry it, and it is masked anyway should one ever do so.
 */
export function explainPostgresError(error: unknown, connectionString: string): StartupError {
  const reason = rootCause(error);
  const code = errorCode(reason);
  let message = reason instanceof Error ? reason.message : String(reason);
  const password = passwordOf(connectionString);
  if (password !== '') message = message.replaceAll(password, '***');
  if (message === '') message = code ?? 'unknown error';
  const hint = postgresHint(code, message);
  return new StartupError(`cannot use PostgreSQL: ${message}${code !== undefined && !message.includes(code) ? ` (${code})` : ''}${hint === undefined ? '' : `; ${hint}`}`, {
    cause: error,
  });
}

function postgresHint(code: string | undefined, message: string): string | undefined {
  const inUrl = 'in ATTACHE_DATABASE_URL';
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens there: start PostgreSQL, or fix the host and port ${inUrl}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `fix the host name ${inUrl}`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `check the host and port ${inUrl} and that no firewall is in the way`;
    case '28P01':
    case '28000':
      return `fix the user or password ${inUrl}, or the server's pg_hba.conf`;
    case '3D000':
      return `create the database (createdb), or fix its name ${inUrl}`;
    case '42501':
      return `grant the user the rights to create tables in that database, or use another user ${inUrl}`;
    default:
      if (/SSL/i.test(message)) return `match sslmode ${inUrl} to the server (sslmode=disable if it has no TLS)`;
      return undefined;
  }
}

/** The innermost error: pg's or the socket's, below our "migration failed" wrappers. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 8; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = current.errors[0];
      continue;
    }
    const cause = (current as { cause?: unknown } | null | undefined)?.cause;
    if (cause === undefined || cause === null) break;
    current = cause;
  }
  return current;
}

function passwordOf(connectionString: string): string {
  try {
    return decodeURIComponent(new URL(connectionString).password);
  } catch {
    return '';
  }
}
