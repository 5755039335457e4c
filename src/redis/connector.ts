/**
 * RedisConnector: bytes in and out of one Redis (or Redis Cluster), under a
 * namespace. It knows Redis keys and commands; it knows nothing of
 * serialization or proxies (that is the Store's job).
 *
 * @module
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import { InvalidOptionsError, errorFromReply, type ErrorContext } from '../errors.js';
import { KeySpace, newKey, validateKey, validateNamespace } from '../keys.js';
import { Scripts, type ConsumeReply } from './scripts.js';

/** Options of {@link RedisConnector}: exactly one of `url` or `client`. */
export interface RedisConnectorOptions {
  /** A `redis://` or `rediss://` URL; the connector creates and owns its client. */
  url?: string;
  /** Your own ioredis `Redis` or `Cluster` client; the connector never closes it. */
  client?: Redis | Cluster;
  /** Prefix of every key this connector touches. No braces. */
  namespace: string;
  /** Extra ioredis options for a client made from `url`. */
  redisOptions?: RedisOptions;
}

/** The serializable configuration of a connector (see {@link RedisConnector.config}). */
export interface RedisConnectorConfig {
  kind: 'redis';
  namespace: string;
  url?: string;
  redisOptions?: RedisOptions;
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
  /** Builds this connector's Redis keys. */
  readonly keys: KeySpace;
  /** The ioredis client in use. */
  readonly client: Redis | Cluster;
  /** The Lua scripts, registered on {@link client}. */
  readonly scripts: Scripts;
  private readonly ownsClient: boolean;
  private readonly url: string | undefined;
  private readonly redisOptions: RedisOptions | undefined;
  private closed = false;

  constructor(options: RedisConnectorOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionsError('RedisConnector needs options: { url | client, namespace }');
    }
    this.namespace = validateNamespace(options.namespace);
    this.keys = new KeySpace(this.namespace);
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new InvalidOptionsError('RedisConnector needs exactly one of `url` or `client`');
    }
    if (options.client !== undefined) {
      if (!(options.client instanceof Redis) && !(options.client instanceof Cluster)) {
        throw new InvalidOptionsError('RedisConnector `client` must be an ioredis Redis or Cluster instance');
      }
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const url = options.url as string;
      if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
        throw new InvalidOptionsError(`RedisConnector \`url\` must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
      }
      this.url = url;
      this.redisOptions = options.redisOptions;
      this.client = new Redis(url, { lazyConnect: false, ...options.redisOptions });
      this.ownsClient = true;
    }
    this.scripts = new Scripts(this.client);
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
    await this.setBatch(keys, values);
    return keys;
  }

  /** Write bytes under a given key (overwrites). */
  async set(key: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.client.set(this.dataKey(key), toBuffer(bytes));
    } catch (err) {
      throw errorFromReply(err, 'SET', { key });
    }
  }

  /** Write many keys in one round trip. */
  async setBatch(keys: string[], values: Uint8Array[]): Promise<void> {
    if (keys.length === 0) return;
    const pipeline = this.client.pipeline();
    keys.forEach((key, i) => pipeline.set(this.dataKey(key), toBuffer(values[i] as Uint8Array)));
    await execPipeline(pipeline, 'SET (batch)');
  }

  /** The bytes under a key, or undefined when it is missing. */
  async get(key: string): Promise<Buffer | undefined> {
    validateKey(key);
    try {
      return (await this.client.getBuffer(this.dataKey(key))) ?? undefined;
    } catch (err) {
      throw errorFromReply(err, 'GET', { key });
    }
  }

  /** Many keys in one round trip; missing ones are undefined. */
  async getBatch(keys: string[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.getBuffer(this.dataKey(validateKey(key)));
    const replies = await execPipeline(pipeline, 'GET (batch)');
    return replies.map((r) => (r as Buffer | null) ?? undefined);
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
   * describes `consumer` for `tombstoneTtlMs`.
   */
  consume(key: string, consumer: string, tombstoneTtlMs: number): Promise<ConsumeReply> {
    validateKey(key);
    return this.scripts.run(
      'consume',
      { data: this.dataKey(key), tombstone: this.keys.object('tomb', key) },
      { consumer, ttlMs: tombstoneTtlMs },
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
    const cfg: RedisConnectorConfig = { kind: 'redis', namespace: this.namespace };
    if (this.url !== undefined) cfg.url = this.url;
    if (this.redisOptions !== undefined) cfg.redisOptions = this.redisOptions;
    return cfg;
  }

  /** Rebuild a connector from {@link RedisConnector.config}. */
  static fromConfig(config: RedisConnectorConfig): RedisConnector {
    if (typeof config !== 'object' || config === null || config.kind !== 'redis') {
      throw new InvalidOptionsError(`not a RedisConnector config: ${JSON.stringify(config)}`);
    }
    if (typeof config.url !== 'string') {
      throw new InvalidOptionsError(
        `RedisConnector config for namespace ${config.namespace} has no url (the connector was made from a client); pass a client instead`,
      );
    }
    const options: RedisConnectorOptions = { url: config.url, namespace: config.namespace };
    if (config.redisOptions !== undefined) options.redisOptions = config.redisOptions;
    return new RedisConnector(options);
  }
}

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
