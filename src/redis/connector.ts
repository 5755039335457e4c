/**
 * RedisConnector: bytes in and out of one Redis (or Redis Cluster), under a
 * namespace. It knows Redis keys and commands; it knows nothing of
 * serialization or proxies (that is the Store's job).
 *
 * @module
 */
import { Redis, Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { InvalidOptionsError, errorFromReply, type ErrorContext } from '../errors.js';
import { KeySpace, newKey, randomId, validateKey, validateNamespace } from '../keys.js';
import createDebug from 'debug';
import { MIN_BULK_LIMIT, bulkLimit, checkFits, trackServer } from './limits.js';
import { Scripts, type ConsumeReply } from './scripts.js';

const log = createDebug('proxystore:redis');

/** A Redis Cluster node address. */
export interface ClusterNode {
  host: string;
  port: number;
}

/** Options of {@link RedisConnector}: exactly one of `url`, `nodes` or `client`. */
export interface RedisConnectorOptions {
  /** A `redis://` or `rediss://` URL; the connector creates and owns its client. */
  url?: string;
  /** Redis Cluster seed nodes; the connector creates and owns an ioredis `Cluster`. */
  nodes?: ClusterNode[];
  /** Your own ioredis `Redis` or `Cluster` client; the connector never closes it. */
  client?: Redis | Cluster;
  /** Prefix of every key this connector touches. No braces. */
  namespace: string;
  /** Extra ioredis options for a client made from `url` (or for each node of `nodes`). */
  redisOptions?: RedisOptions;
  /** Extra ioredis Cluster options for a client made from `nodes`. */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
  /**
   * Milliseconds after which a command made through a client the connector
   * created fails with a timeout error instead of waiting (for a Redis that
   * is down, restarting or stuck). Default 10,000. A client you pass in keeps
   * its own `commandTimeout`.
   */
  commandTimeout?: number;
  /**
   * Let the process exit while this connector's connection is idle (the
   * socket is `unref()`ed; a command in flight still holds the process
   * through its timeout timer). For connections made on demand, e.g. the
   * store a process builds from PROXYSTORE_REDIS_URL to resolve a ref, and
   * for short-lived processes such as serverless handlers. Only for clients
   * made from `url`. Default false.
   */
  unrefWhenIdle?: boolean;
}

/** The serializable configuration of a connector (see {@link RedisConnector.config}). */
export interface RedisConnectorConfig {
  kind: 'redis';
  namespace: string;
  url?: string;
  nodes?: ClusterNode[];
  redisOptions?: RedisOptions;
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
  commandTimeout?: number;
}

/**
 * Stores bytes in Redis under a namespace.
 *
 * @example
 * ```ts
 * const connector = new RedisConnector({ url: 'redis://127.0.0.1:6379', namespace: 'app' });
 * const key = await connector.put(Buffer.from('bytes'));
 * await connector.get(key); // <Buffer 62 79 74 65 73>
 * await connector.close();
 * ```
 */
export class RedisConnector {
  /** The namespace every key starts with. */
  readonly namespace: string;
  /** Builds this connector's Redis keys. @internal */
  readonly keys: KeySpace;
  /** The ioredis client in use. */
  readonly client: Redis | Cluster;
  /** The Lua scripts, registered on {@link client}. @internal */
  readonly scripts: Scripts;
  private readonly ownsClient: boolean;
  private readonly settings: Omit<RedisConnectorConfig, 'kind' | 'namespace'>;
  private closed = false;

  constructor(options: RedisConnectorOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionsError('RedisConnector needs options: { url | nodes | client, namespace }');
    }
    this.namespace = validateNamespace(options.namespace);
    this.keys = new KeySpace(this.namespace);
    const given = (['url', 'nodes', 'client'] as const).filter((k) => options[k] !== undefined);
    if (given.length !== 1) {
      throw new InvalidOptionsError(
        `RedisConnector needs exactly one of \`url\`, \`nodes\` or \`client\`, got ${given.length ? given.join(' and ') : 'none'}`,
      );
    }
    this.settings = {};
    if (options.client !== undefined) {
      if (!(options.client instanceof Redis) && !(options.client instanceof Cluster)) {
        throw new InvalidOptionsError('RedisConnector `client` must be an ioredis Redis or Cluster instance');
      }
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
      if (!Number.isFinite(commandTimeout) || commandTimeout <= 0) {
        throw new InvalidOptionsError(`commandTimeout must be a positive number of milliseconds, got ${String(options.commandTimeout)}`);
      }
      if (options.commandTimeout !== undefined) this.settings.commandTimeout = options.commandTimeout;
      if (options.redisOptions !== undefined) this.settings.redisOptions = options.redisOptions;
      if (options.url !== undefined) {
        const url = options.url;
        if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
          throw new InvalidOptionsError(`RedisConnector \`url\` must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
        }
        this.settings.url = url;
        const client = new Redis(url, { commandTimeout, ...options.redisOptions });
        if (options.unrefWhenIdle) {
          // Each new connection's socket; commands in flight keep their (ref'd) timeout timer.
          client.on('connect', () => client.stream?.unref());
        }
        this.client = client;
      } else {
        const nodes = options.nodes as ClusterNode[];
        if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((n) => typeof n?.host === 'string' && Number.isInteger(n?.port))) {
          throw new InvalidOptionsError(`RedisConnector \`nodes\` must be a non-empty list of { host, port }, got ${JSON.stringify(nodes)}`);
        }
        this.settings.nodes = nodes.map((n) => ({ host: n.host, port: n.port }));
        if (options.clusterOptions !== undefined) this.settings.clusterOptions = options.clusterOptions;
        this.client = new Cluster(this.settings.nodes, {
          ...options.clusterOptions,
          redisOptions: { commandTimeout, ...options.redisOptions },
        });
      }
      // Connection errors reach callers as rejected commands; without a
      // listener ioredis would also print every reconnect attempt.
      this.client.on('error', (err: Error) => log('connection error (%s): %s', this.namespace, err.message));
      this.ownsClient = true;
    }
    this.scripts = new Scripts(this.client);
    trackServer(this.client, this.namespace);
  }

  /** Whether the client is a Redis Cluster client. */
  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /**
   * Split `redisKeys` (by index) into groups that one pipeline can carry: all
   * of them on a single Redis; one group per master node on a Cluster
   * (ioredis refuses a pipeline whose keys live on several nodes).
   */
  async groupsByNode(redisKeys: string[]): Promise<number[][]> {
    const client = this.client;
    if (!(client instanceof Cluster)) return [redisKeys.map((_, i) => i)];
    if (client.status !== 'ready') {
      await new Promise<void>((resolveReady, reject) => {
        client.once('ready', () => resolveReady());
        client.once('end', () => reject(new Error('the cluster connection ended')));
      });
    }
    const groups = new Map<string, number[]>();
    redisKeys.forEach((key, i) => {
      const slot = calculateSlot(key);
      const owner = client.slots[slot]?.[0] ?? `slot:${slot}`;
      let group = groups.get(owner);
      if (!group) groups.set(owner, (group = []));
      group.push(i);
    });
    return [...groups.values()];
  }

  /**
   * The largest value, in bytes as stored, that this connector's Redis
   * accepts (its `proto-max-bulk-len`, learned once per connection; 512 MB
   * when CONFIG GET is not allowed). Larger puts fail before sending anything.
   */
  maxValueBytes(): Promise<number> {
    return bulkLimit(this.client);
  }

  /** Refuse, before sending, values larger than this Redis accepts (see {@link maxValueBytes}). */
  checkFits(values: readonly Uint8Array[], operation: string): Promise<void> {
    return checkFits(this.client, values, operation);
  }

  /** A fresh key, inside a lifetime's hash tag when `lifetimeId` is given. */
  newKey(lifetimeId?: string): string {
    return newKey(lifetimeId);
  }

  /** The Redis key holding an object's bytes. */
  dataKey(key: string): string {
    return this.keys.object('d', key);
  }

  /** Store bytes under a new key (ProxyStore's `Connector.put`). */
  async put(bytes: Uint8Array): Promise<string> {
    const key = this.newKey();
    await this.set(key, bytes);
    return key;
  }

  /** Store many byte strings in one round trip. */
  async putBatch(values: Uint8Array[]): Promise<string[]> {
    const keys = values.map(() => this.newKey());
    if (keys.length === 1) await this.set(keys[0] as string, values[0] as Uint8Array);
    else await this.setBatch(keys, values);
    return keys;
  }

  /** Write bytes under a given key (overwrites). */
  set(key: string, bytes: Uint8Array): Promise<unknown> {
    if (bytes.byteLength > MIN_BULK_LIMIT) return this.checkFits([bytes], 'put').then(() => this.write(key, bytes));
    return this.write(key, bytes);
  }

  private write(key: string, bytes: Uint8Array): Promise<unknown> {
    return this.client.set(this.dataKey(key), toBuffer(bytes)).catch((err: unknown) => {
      throw errorFromReply(err, 'SET', { key });
    });
  }

  /**
   * Write many keys in one round trip: MSETs of up to 1,000 keys
   * on a single Redis (one command per chunk is far cheaper than a SET per
   * key, for ioredis and for Redis), one SET per key on a Cluster (MSET keys
   * must share a slot).
   */
  async setBatch(keys: string[], values: Uint8Array[]): Promise<void> {
    if (keys.length === 0) return;
    await this.checkFits(values, 'putBatch');
    if (this.isCluster) {
      const redisKeys = keys.map((k) => this.dataKey(k));
      const groups = await this.groupsByNode(redisKeys);
      await Promise.all(
        groups.map((group) => {
          const pipeline = this.client.pipeline();
          for (const i of group) pipeline.set(redisKeys[i] as string, toBuffer(values[i] as Uint8Array));
          return execPipeline(pipeline, 'SET (batch)');
        }),
      );
      return;
    }
    const pipeline = this.client.pipeline();
    for (let start = 0; start < keys.length; start += MSET_CHUNK) {
      const args: (string | Buffer)[] = [];
      for (let i = start; i < Math.min(keys.length, start + MSET_CHUNK); i++) {
        args.push(this.dataKey(keys[i] as string), toBuffer(values[i] as Uint8Array));
      }
      pipeline.mset(...args);
    }
    await execPipeline(pipeline, 'SET (batch)');
  }

  /** The bytes under a key, or undefined when it is missing. */
  get(key: string): Promise<Buffer | undefined> {
    validateKey(key);
    return this.client.getBuffer(this.dataKey(key)).then(
      (bytes) => bytes ?? undefined,
      (err: unknown) => {
        throw errorFromReply(err, 'GET', { key });
      },
    );
  }

  /** Many keys in one round trip (one per node on a Cluster); missing ones are undefined. */
  async getBatch(keys: string[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    const redisKeys = keys.map((k) => this.dataKey(validateKey(k)));
    const out: (Buffer | undefined)[] = new Array<Buffer | undefined>(keys.length);
    await Promise.all(
      (await this.groupsByNode(redisKeys)).map(async (group) => {
        const pipeline = this.client.pipeline();
        for (const i of group) pipeline.getBuffer(redisKeys[i] as string);
        const replies = await execPipeline(pipeline, 'GET (batch)');
        group.forEach((i, j) => (out[i] = (replies[j] as Buffer | null) ?? undefined));
      }),
    );
    return out;
  }

  /** The first `length` bytes under a key (a header peek that never consumes). */
  async getPrefix(key: string, length: number): Promise<Buffer | undefined> {
    validateKey(key);
    try {
      const bytes = await this.client.getrangeBuffer(this.dataKey(key), 0, length - 1);
      return bytes.length === 0 ? undefined : bytes;
    } catch (err) {
      throw errorFromReply(err, 'GETRANGE', { key });
    }
  }

  /** Whether a key exists. */
  async exists(key: string): Promise<boolean> {
    validateKey(key);
    try {
      return (await this.client.exists(this.dataKey(key))) === 1;
    } catch (err) {
      throw errorFromReply(err, 'EXISTS', { key });
    }
  }

  /** Delete a key; a missing key is not an error. */
  async evict(key: string): Promise<void> {
    validateKey(key);
    try {
      await this.client.unlink(this.dataKey(key));
    } catch (err) {
      throw errorFromReply(err, 'UNLINK', { key });
    }
  }

  /**
   * Read and delete a key in one atomic step, leaving a tombstone that
   * describes `consumer` for `tombstoneTtlMs`. The bytes stay `graceMs` under
   * a grace key named after `token`, so that the same consumer (same token:
   * ioredis's resend after a lost reply, or the same proxy resolved again
   * after an unclear failure) still gets them, whatever the tombstone's TTL.
   */
  consume(key: string, consumer: string, tombstoneTtlMs: number, token: string = randomId(), graceMs = CONSUME_GRACE_MS): Promise<ConsumeReply> {
    validateKey(key);
    return this.scripts.run(
      'consume',
      { data: this.dataKey(key), tombstone: this.keys.object('tomb', key), grace: this.keys.graceCopy(key, token) },
      { token, consumer, ttlMs: tombstoneTtlMs, graceMs },
      { key },
    );
  }

  /** The consume tombstone of a key, if it was consumed recently. */
  async tombstone(key: string): Promise<Buffer | undefined> {
    try {
      return (await this.client.getBuffer(this.keys.object('tomb', key))) ?? undefined;
    } catch (err) {
      throw errorFromReply(err, 'GET', { key });
    }
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Close the client if this connector created it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) {
      try {
        await this.client.quit();
      } catch {
        this.client.disconnect();
      }
    }
  }

  /**
   * The configuration to rebuild this connector elsewhere. A connector made
   * from your own client has no URL; {@link RedisConnector.fromConfig} then
   * needs one.
   */
  config(): RedisConnectorConfig {
    return { kind: 'redis', namespace: this.namespace, ...this.settings };
  }

  /** Rebuild a connector from {@link RedisConnector.config}. */
  static fromConfig(config: RedisConnectorConfig): RedisConnector {
    if (typeof config !== 'object' || config === null || config.kind !== 'redis') {
      throw new InvalidOptionsError(`not a RedisConnector config: ${JSON.stringify(config)}`);
    }
    if (config.url === undefined && config.nodes === undefined) {
      throw new InvalidOptionsError(
        `RedisConnector config for namespace ${config.namespace} has no url or nodes (the connector was made from a client); pass a client instead`,
      );
    }
    const { kind: _kind, ...options } = config;
    return new RedisConnector(options);
  }
}

/** Default command timeout of clients the connector creates. */
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/**
 * How long consumed bytes wait for the consumer that took them to ask again
 * (a resend after a lost reply, or the same proxy resolved again). Longer
 * than any sane command timeout plus reconnect.
 */
export const CONSUME_GRACE_MS = 30_000;

/** Keys per MSET in {@link RedisConnector.setBatch}. */
const MSET_CHUNK = 1000;

function toBuffer(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError(`expected bytes (a Buffer or Uint8Array), got ${typeof bytes}`);
}

/** Run a pipeline and throw the first error it holds. */
export async function execPipeline(
  pipeline: ReturnType<Redis['pipeline']>,
  operation: string,
  context: ErrorContext = {},
): Promise<unknown[]> {
  let results: [Error | null, unknown][] | null;
  try {
    results = await pipeline.exec();
  } catch (err) {
    throw errorFromReply(err, operation, context);
  }
  if (results === null) throw errorFromReply(new Error('pipeline was discarded'), operation, context);
  return results.map(([err, value]) => {
    if (err) throw errorFromReply(err, operation, context);
    return value;
  });
}
