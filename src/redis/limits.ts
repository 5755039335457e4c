/**
 * What the library needs to know of the server, learned once per connection
 * with `HELLO` and `CONFIG GET`, sent together when the connection becomes
 * ready (never per call):
 *
 * - the server's version: the scripts need Redis 7.0 (PEXPIRETIME, and the
 *   7.0 forms of EXPIRE and SET). An older server is refused before the first
 *   script runs (a script failing half-way on 6.2 would leave keys behind),
 *   with an error naming its version. `HELLO` (Redis 6.0+, allowed to every
 *   ACL user) gives it; where it is refused, `INFO server`; where that is
 *   refused too, a script reading `redis.REDIS_VERSION` (nil before 7.0).
 *   When nothing answers, the server is assumed recent enough.
 *
 * - `proto-max-bulk-len`, the largest value one Redis accepts. A command with
 *   a larger argument makes Redis reply "Protocol error: invalid bulk length"
 *   and drop the connection, failing every other command in flight on it;
 *   checking first turns that into one clear error and sends nothing. Values
 *   of at most 1 MiB, the smallest limit Redis allows, never wait for the
 *   answer.
 * - `maxmemory-policy`: a policy that lets Redis evict keys by itself
 *   (allkeys-*, volatile-*) could drop an owned, borrowed or lifetime-held
 *   object behind the library's back, so it gets one warning per client.
 *
 * CONFIG is often forbidden (ACL users, managed Redis); then Redis's default
 * limit of 512 MB is assumed and the policy is not checked.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import createDebug from 'debug';
import { RedisOperationError } from '../errors.js';

/** The oldest Redis the scripts run on. */
export const MIN_REDIS_VERSION = [7, 0, 0] as const;

const log = createDebug('proxystore:redis');

/** The smallest `proto-max-bulk-len` Redis accepts: a value this large always fits. */
export const MIN_BULK_LIMIT = 1024 * 1024;
/** Redis's default `proto-max-bulk-len`, assumed when CONFIG GET is refused. */
export const DEFAULT_BULK_LIMIT = 512 * 1024 * 1024;

type Client = Redis | Cluster;

/** `CONFIG GET a b` replies [name, value, name, value, ...]. */
function setting(reply: unknown, name: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return String(reply[i + 1]);
  return undefined;
}

/** What one connection's server said about itself. */
export interface Learned {
  bulkLimit: number;
  /** Set when the server is too old: every script and `ready()` fail with it. */
  refusal: Error | undefined;
  /** `cluster-node-timeout` (ms), when CONFIG GET is allowed. */
  nodeTimeoutMs: number | undefined;
}

/** `[7, 0, 15]` from "7.0.15"; undefined when it is not a version. */
export function parseVersion(text: unknown): number[] | undefined {
  if (typeof text !== 'string' && !Buffer.isBuffer(text)) return undefined;
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(String(text).trim());
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

/** Whether a version is at least {@link MIN_REDIS_VERSION}. */
export function isSupportedVersion(version: readonly number[]): boolean {
  for (let i = 0; i < MIN_REDIS_VERSION.length; i++) {
    const a = version[i] ?? 0;
    const b = MIN_REDIS_VERSION[i] as number;
    if (a !== b) return a > b;
  }
  return true;
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** A key-value list reply (`HELLO` over RESP2) as a lookup. */
function field(reply: unknown, name: string): unknown {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return reply[i + 1];
  return undefined;
}

function where(client: Client): string {
  const options = (client as { options?: { host?: string; port?: number; path?: string } }).options;
  if (options?.path) return ` at ${options.path}`;
  return options?.host ? ` at ${options.host}:${options.port ?? 6379}` : '';
}

/** The settings of one client's server, relearned on each new connection. */
class ServerSettings {
  private learned: Promise<Learned> | undefined;
  /** The current connection's server passed the version check. */
  private checked = false;
  /** The last server seen was too old (kept across reconnects until a check passes). */
  refusal: Error | undefined;
  private warned = false;
  /** Called with what each new connection's server said (see {@link whenLearned}). */
  readonly listeners: ((learned: Learned) => void)[] = [];
  /** The last answer, for listeners that come later. */
  last: Learned | undefined;

  constructor(
    private readonly client: Client,
    private readonly namespace: string,
  ) {
    client.on('ready', () => void this.get().catch(() => undefined));
    client.on('close', () => {
      this.learned = undefined;
      this.checked = false;
    });
    if (client.status === 'ready') void this.get().catch(() => undefined);
  }

  get(): Promise<Learned> {
    if (!this.learned) {
      const learning = this.learn();
      this.learned = learning;
      // A connection error is not an answer: ask again next time.
      learning.catch(() => {
        if (this.learned === learning) this.learned = undefined;
      });
    }
    return this.learned;
  }

  /** Undefined when the server is known good; else a promise that settles when it is known. */
  check(): Promise<void> | undefined {
    if (this.checked) return undefined;
    return this.get().then((learned) => {
      if (learned.refusal) throw learned.refusal;
    });
  }

  private async learn(): Promise<Learned> {
    // Sent together: one round trip.
    const [hello, config] = await Promise.allSettled([
      this.client.call('HELLO'),
      this.client.config('GET', 'proto-max-bulk-len', 'maxmemory-policy', 'cluster-node-timeout'),
    ]);
    for (const outcome of [hello, config]) {
      if (outcome.status === 'rejected' && !isReplyError(outcome.reason)) throw outcome.reason;
    }
    const refusal = await this.checkVersion(hello);
    this.refusal = refusal;
    this.checked = refusal === undefined;
    const timeout = config.status === 'fulfilled' ? Number(setting(config.value, 'cluster-node-timeout')) : NaN;
    const learned: Learned = {
      bulkLimit: config.status === 'fulfilled' ? this.settings(config.value) : DEFAULT_BULK_LIMIT,
      refusal,
      nodeTimeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
    };
    this.last = learned;
    for (const listener of this.listeners) listener(learned);
    return learned;
  }

  /** The refusal for a server older than 7.0, or undefined. */
  private async checkVersion(hello: PromiseSettledResult<unknown>): Promise<Error | undefined> {
    let text: string | undefined;
    const reported = hello.status === 'fulfilled' ? field(hello.value, 'version') : undefined;
    if (reported !== undefined && reported !== null) {
      text = String(reported);
    } else if (hello.status === 'rejected' && /unknown command/i.test((hello.reason as Error).message)) {
      text = 'older than 6.0 (it does not know HELLO)';
    } else {
      text = await this.versionFromInfo();
    }
    const version = parseVersion(text);
    if (text === undefined) {
      log('the server version could not be learned (HELLO, INFO and EVAL refused): assumed recent enough');
      return undefined;
    }
    if (version && isSupportedVersion(version)) {
      log('Redis %s', text);
      return undefined;
    }
    return new RedisOperationError(
      `Redis ${version ? text : text.startsWith('older') ? text : `version ${JSON.stringify(text)}`}${where(this.client)} is not supported: ` +
        `proxystore-redis needs Redis ${MIN_REDIS_VERSION.slice(0, 2).join('.')} or later (its scripts use PEXPIRETIME and other 7.0 commands); ` +
        'nothing was run. Upgrade the server, or point the connector at a Redis 7.',
    );
  }

  /** The version from INFO server, else from a script; undefined when both are refused. */
  private async versionFromInfo(): Promise<string | undefined> {
    try {
      const info = String(await this.client.info('server'));
      const match = /^redis_version:(.+)$/m.exec(info);
      if (match) return (match[1] as string).trim();
    } catch (err) {
      if (!isReplyError(err)) throw err;
    }
    try {
      // redis.REDIS_VERSION exists from 7.0 on: nil (an empty reply) before.
      const reply: unknown = await this.client.eval('return redis.REDIS_VERSION', 0);
      return reply === null || reply === undefined ? 'older than 7.0 (its Lua has no redis.REDIS_VERSION)' : String(reply);
    } catch (err) {
      if (!isReplyError(err)) throw err;
      return undefined;
    }
  }

  private settings(reply: unknown): number {
    const policy = setting(reply, 'maxmemory-policy') ?? '';
    if (!this.warned && /^(allkeys|volatile)-/.test(policy)) {
      this.warned = true;
      log('maxmemory-policy is %s', policy);
      process.emitWarning(
        `Redis maxmemory-policy is ${policy}: under memory pressure Redis may evict proxystore-redis objects ` +
          `(namespace ${this.namespace}) that are still owned, borrowed or held by a lifetime. Use noeviction.`,
        { type: 'ProxyStoreWarning', code: 'PROXYSTORE_EVICTION_POLICY' },
      );
    }
    const value = Number(setting(reply, 'proto-max-bulk-len'));
    return Number.isFinite(value) && value >= MIN_BULK_LIMIT ? Math.min(value, Number.MAX_SAFE_INTEGER) : DEFAULT_BULK_LIMIT;
  }
}

// One tracker (and one pair of listeners) per client, however many connectors share it.
const trackers = new WeakMap<Client, ServerSettings>();

/** Start learning a client's server settings (idempotent; `namespace` names the first user in warnings). */
export function trackServer(client: Client, namespace: string): void {
  if (!trackers.has(client)) trackers.set(client, new ServerSettings(client, namespace));
}

/**
 * Call `listener` with what the client's server says about itself, each time
 * a new connection learns it (and now, if it was learned already). Never
 * opens a connection by itself.
 */
export function whenLearned(client: Client, listener: (learned: Learned) => void): () => void {
  trackServer(client, '?');
  const tracker = trackers.get(client) as ServerSettings;
  tracker.listeners.push(listener);
  if (tracker.last) listener(tracker.last);
  return () => {
    const i = tracker.listeners.indexOf(listener);
    if (i >= 0) tracker.listeners.splice(i, 1);
  };
}

/** Redis's default `cluster-node-timeout`, assumed when CONFIG GET is refused. */
export const DEFAULT_NODE_TIMEOUT_MS = 15_000;

/**
 * About how long a failover of a Redis Cluster with this `cluster-node-timeout`
 * takes, at most: the master is flagged failing after the node timeout, then
 * its replicas wait 0.5-1 s (more for a lagging one) and hold an election.
 * 1.5 x node timeout + 2 s: 5 s for a 2 s timeout (3.2-4.6 s measured by the
 * chaos suite), 24.5 s for the default 15 s (15-20 s seen).
 */
export function failoverEstimateMs(nodeTimeoutMs: number): number {
  return Math.round(1.5 * nodeTimeoutMs + 2000);
}

/**
 * Warn (a ProxyStoreWarning) when a store's `leaseTtl` is shorter than a
 * failover of its cluster may take: during a failover nobody can renew the
 * leases of handles on the failing shard. Returns whether it warned.
 */
export function warnShortLease(storeName: string, leaseTtlSeconds: number, nodeTimeoutMs: number | undefined): boolean {
  const estimate = failoverEstimateMs(nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS);
  if (leaseTtlSeconds * 1000 >= estimate) return false;
  const timeout =
    nodeTimeoutMs === undefined
      ? `the default cluster-node-timeout of ${DEFAULT_NODE_TIMEOUT_MS} ms assumed (CONFIG GET is not allowed)`
      : `cluster-node-timeout ${nodeTimeoutMs} ms`;
  process.emitWarning(
    `Store ${storeName}: leaseTtl ${leaseTtlSeconds} s is shorter than a failover of this Redis Cluster may take (about ${estimate / 1000} s, with ${timeout}): ` +
      'while a shard fails over, nobody can renew the leases of borrows and owners on it. ' +
      `Use a leaseTtl of at least ${Math.ceil(estimate / 1000)} s (or a shorter cluster-node-timeout).`,
    { type: 'ProxyStoreWarning', code: 'PROXYSTORE_LEASE_TTL_FAILOVER' },
  );
  return true;
}

/** The client's `proto-max-bulk-len` in bytes. */
export function bulkLimit(client: Client): Promise<number> {
  trackServer(client, '?');
  return (trackers.get(client) as ServerSettings).get().then((learned) => learned.bulkLimit);
}

/**
 * Undefined once the client's current server passed the version check (the
 * fast path); otherwise a promise that resolves when it passes and rejects
 * with the refusal naming the version (or the connection error).
 */
export function serverChecked(client: Client): Promise<void> | undefined {
  trackServer(client, '?');
  return (trackers.get(client) as ServerSettings).check();
}

/** The refusal of the last server seen, when it was too old (a sync check for plain commands). */
export function serverRefusal(client: Client): Error | undefined {
  return trackers.get(client)?.refusal;
}

function bytes(n: number): string {
  return `${n.toLocaleString('en-US')} bytes`;
}

/**
 * Throw a {@link RedisOperationError} naming the size and the limit if a
 * value is larger than the client's Redis accepts. Resolves at once when
 * every value is at most {@link MIN_BULK_LIMIT}.
 */
export async function checkFits(client: Client, values: readonly Uint8Array[], operation: string): Promise<void> {
  let limit: number | undefined;
  for (let i = 0; i < values.length; i++) {
    const size = (values[i] as Uint8Array).byteLength;
    if (size <= MIN_BULK_LIMIT) continue;
    limit ??= await bulkLimit(client);
    if (size > limit) {
      const which = values.length > 1 ? `value ${i} of the batch` : 'the value';
      throw new RedisOperationError(
        `${operation} refused: ${which} is ${bytes(size)} as stored, more than the ${bytes(limit)} this Redis accepts in one value ` +
          '(its proto-max-bulk-len); nothing was written. Raise proto-max-bulk-len on the server or store smaller pieces.',
      );
    }
  }
}
