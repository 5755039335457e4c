/**
 * The command line's arguments: `util.parseArgs` (no dependency), checked
 * into one {@link CliOptions}, and the help texts.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ENV_NAMESPACE, ENV_URL } from '../store.js';
import { validateNamespace } from '../keys.js';
import type { ClusterNode } from '../redis/connector.js';

/** The program's name, as `npx` runs it. */
export const PROGRAM = 'proxystore-redis';

/**
 * The guide to the command line, docs/cli.md, which the package ships: the same relative path
 * from src/cli/ in the repository and from dist/cli/ in the installed package.
 */
export const CLI_GUIDE = fileURLToPath(new URL('../../docs/cli.md', import.meta.url));

/** Used when neither `--url` nor PROXYSTORE_REDIS_URL is given. */
export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** A wrong command line: exit code 2, with the message and a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type Command = 'inspect' | 'gc';

/** A checked command line. */
export interface CliOptions {
  command: Command | 'help' | 'version';
  /** `inspect KEY`. */
  key: string | undefined;
  url: string;
  /** True when the URL came from `--url` or the environment (it also carries credentials for `--cluster`). */
  urlGiven: boolean;
  cluster: ClusterNode[] | undefined;
  namespace: string;
  json: boolean;
  /** gc: evict for real. */
  yes: boolean;
  /** gc: only objects idle at least this many seconds. */
  olderThan: number | undefined;
  /** inspect: rows per section; Infinity for all. */
  limit: number;
  /** Connect timeout and per-command timeout, milliseconds. */
  timeoutMs: number;
  /** The command whose help was asked for, if any. */
  helpFor: Command | undefined;
}

const OPTIONS = {
  url: { type: 'string', short: 'u' },
  namespace: { type: 'string', short: 'n' },
  cluster: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  yes: { type: 'boolean', short: 'y' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'older-than': { type: 'string' },
  limit: { type: 'string' },
  timeout: { type: 'string' },
} as const;

/** Options that belong to one command only. */
const ONLY_FOR: Record<string, Command> = {
  yes: 'gc',
  force: 'gc',
  'dry-run': 'gc',
  'older-than': 'gc',
  limit: 'inspect',
};

const DEFAULT_LIMIT = 100;
const DEFAULT_TIMEOUT_S = 5;

/** parseArgs' errors, shorter (they go on about positionals after `--`). */
function shortParseError(err: Error, argv: string[]): string {
  const message = err.message;
  let m = /^Unknown option '([^']+)'/.exec(message);
  if (m) {
    // Store keys and lifetime ids are base64url: one in 64 starts with '-',
    // and parseArgs names only its first letter (`-A` of `-AbC`).
    const option = m[1] as string;
    const word = /^-[^-]/.test(option) ? argv.find((a) => a.startsWith(option) && a.length > 2) : undefined;
    const hint = word ? ` (a KEY that starts with '-' goes after --, as in: inspect -- ${word})` : '';
    return `unknown option ${word ?? option}${hint}`;
  }
  m = /^Option '(--[\w-]+)(?: <value>)?' argument missing/.exec(message) ?? /^Option '-\w, (--[\w-]+) <value>' argument missing/.exec(message);
  if (m) return `${m[1]} needs a value`;
  m = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (m) return `${m[1]} takes no value`;
  m = /^Option '(?:-\w, )?(--[\w-]+)' argument is ambiguous/.exec(message);
  if (m) return `${m[1]} needs a value (write ${m[1]}=VALUE for a value that starts with '-')`;
  m = /^Unexpected argument '([^']+)'/.exec(message);
  if (m) return `unexpected argument ${m[1]}`;
  return (/^[^.]*\./.exec(message)?.[0] ?? message).replace(/'/g, '');
}

function nonNegative(name: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} takes a ${integer ? 'whole ' : ''}number of ${name === 'limit' ? 'rows' : 'seconds'} >= 0, got ${JSON.stringify(text)}`);
  }
  return n;
}

function parseNodes(text: string): ClusterNode[] {
  const nodes = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^(?:rediss?:\/\/)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(s);
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65535) throw new UsageError(`--cluster takes host:port[,host:port...], got ${JSON.stringify(s)}`);
      return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
    });
  if (nodes.length === 0) throw new UsageError('--cluster takes host:port[,host:port...], got nothing');
  return nodes;
}

function fromEnv(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** Parse and check `argv` (without node and the script). Throws {@link UsageError}. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(shortParseError(err as Error, argv));
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;

  let command: CliOptions['command'];
  let helpFor: Command | undefined;
  if (first === undefined) {
    if (values.version) command = 'version';
    else if (values.help) command = 'help';
    else throw new UsageError('no command given: use inspect or gc');
  } else if (first === 'help') {
    const about = rest[0];
    if (about !== undefined && about !== 'inspect' && about !== 'gc') throw new UsageError(`no command ${JSON.stringify(about)}: use inspect or gc`);
    command = 'help';
    helpFor = about;
  } else if (first === 'inspect' || first === 'gc') {
    command = values.help ? 'help' : first;
    helpFor = first;
  } else {
    throw new UsageError(`unknown command ${JSON.stringify(first)}: use inspect or gc`);
  }

  const base: CliOptions = {
    command,
    key: undefined,
    url: DEFAULT_URL,
    urlGiven: false,
    cluster: undefined,
    namespace: '',
    json: values.json ?? false,
    yes: false,
    olderThan: undefined,
    limit: DEFAULT_LIMIT,
    timeoutMs: DEFAULT_TIMEOUT_S * 1000,
    helpFor,
  };
  if (command === 'help' || command === 'version') return base;

  for (const [option, owner] of Object.entries(ONLY_FOR)) {
    if ((values as Record<string, unknown>)[option] !== undefined && owner !== command) {
      throw new UsageError(`--${option} is an option of ${owner}, not of ${command}`);
    }
  }
  if (command === 'inspect') {
    if (rest.length > 1) throw new UsageError(`inspect takes at most one KEY, got ${rest.length}`);
    base.key = rest[0];
    if (values.limit !== undefined) {
      const n = nonNegative('limit', values.limit, true);
      base.limit = n === 0 ? Infinity : n;
    }
  } else {
    if (rest.length > 0) throw new UsageError(`gc takes no KEY (got ${JSON.stringify(rest[0])}): it looks at the whole namespace`);
    base.yes = Boolean(values.yes || values.force);
    if (base.yes && values['dry-run']) throw new UsageError('--dry-run and --yes contradict each other: gc is a dry run unless --yes is given');
    if (values['older-than'] !== undefined) base.olderThan = Math.floor(nonNegative('older-than', values['older-than'], false));
  }

  const url = values.url ?? fromEnv(ENV_URL, env);
  if (url !== undefined) {
    if (!/^rediss?:\/\/./.test(url)) throw new UsageError(`--url must be a redis:// or rediss:// URL, got ${JSON.stringify(redactUrl(url))}`);
    try {
      new URL(url);
    } catch {
      throw new UsageError(`--url is not a valid URL: ${JSON.stringify(redactUrl(url))}`);
    }
    base.url = url;
    base.urlGiven = true;
  }
  if (values.cluster !== undefined) base.cluster = parseNodes(values.cluster);

  const namespace = values.namespace ?? fromEnv(ENV_NAMESPACE, env);
  if (namespace === undefined) {
    throw new UsageError(`no namespace: give --namespace NAME or set ${ENV_NAMESPACE}`);
  }
  try {
    base.namespace = validateNamespace(namespace);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.timeout !== undefined) {
    const seconds = nonNegative('timeout', values.timeout, false);
    if (seconds === 0) throw new UsageError('--timeout must be more than 0 seconds');
    base.timeoutMs = Math.max(1, Math.round(seconds * 1000));
  }
  return base;
}

/** A URL with its password (and user) hidden, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@');
}

const COMMON = `Options:
  -u, --url URL          Redis URL (default: $${ENV_URL}, then ${DEFAULT_URL})
      --cluster H:P,...  Redis Cluster seed nodes (credentials and TLS from --url);
                         a --url that points at a cluster node is detected too
  -n, --namespace NAME   the store's namespace (default: $${ENV_NAMESPACE}; required)
      --json             machine-readable output (its shape: see the guide below)
      --timeout SECONDS  connect and per-command timeout (default ${DEFAULT_TIMEOUT_S})
  -h, --help             this help
  -V, --version          the version

Guide: ${CLI_GUIDE}`;

const HELP = {
  main: `Usage: ${PROGRAM} <command> [options]

Look into, and clean up, the objects that proxystore-redis keeps in one namespace.

Commands:
  inspect [KEY]   list lifetimes, owned objects, consumed objects (tombstones) and
                  orphans (objects that belong to nothing); with KEY, one object or
                  lifetime in detail. Read-only.
  gc              evict the orphans. A dry run unless --yes is given.
  help [COMMAND]  help on a command

${COMMON}

Exit codes: 0 done, 1 failed (Redis unreachable, a Redis error), 2 wrong usage,
3 inspect KEY found nothing.`,
  inspect: `Usage: ${PROGRAM} inspect [KEY] [options]

Without KEY: four tables (lifetimes, owned objects, consumed objects, orphans).
With KEY: one object (a store key) or one lifetime (its id) in detail. A KEY
that starts with '-' goes last, after --:  inspect -n app -- -Xq3...
Uses read commands only (SCAN, TYPE, PTTL, HGETALL, ZRANGE, SCARD, SSCAN,
SISMEMBER, OBJECT IDLETIME, GET of tombstones); never reads an object's value.
A chunked object (over its store's chunkSize) shows its size, chunk count and
chunk size: inspect KEY reads its manifest (HGET, which Redis counts as a use).

      --limit N          rows per table (default ${DEFAULT_LIMIT}; 0 for all); counts are always complete

${COMMON}`,
  gc: `Usage: ${PROGRAM} gc [--yes] [--older-than SECONDS] [options]

Evicts the orphans: data keys that no lifetime holds and no owner owns. Plain
puts (store.put, store.proxy without a lifetime) are orphans too: they belong
to nothing until someone evicts them. Tombstones and grace copies are never
touched (they expire by themselves), nor members of a lifetime, nor owned or
borrowed objects. A chunked object is evicted whole, like any orphan; the
staging hash of a chunked write is evicted only when it has no TTL (no writer
left: a writer's has one from its first chunk on).

      --dry-run          list what would be evicted, change nothing (the default)
  -y, --yes, --force     evict for real
      --older-than SECONDS
                         only objects not read or written for SECONDS (Redis's
                         OBJECT IDLETIME): protects objects someone just made

${COMMON}`,
};

/** The help text of the program or of one command. */
export function helpText(about: Command | undefined): string {
  return about === undefined ? HELP.main : HELP[about];
}
