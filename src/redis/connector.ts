/**
 * RedisConnector: bytes in and out of one Redis (or Redis Cluster), under a
 * namespace. It knows Redis keys and commands; it knows nothing of
 * serialization or proxies (that is the Store's job).
 *
 * @module
 */
import { Redis, Cluster, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { InvalidOptionsError, ProxyResolveMissingKeyError, RedisOperationError, errorFromReply, withMessage, ProxyStoreError, type ErrorContext } from '../errors.js';
import { clusterFault, outcomeUnknown } from './faults.js';
import { KeySpace, newKey, randomId, validateKey, validateNamespace } from '../keys.js';
import { checkDurability, checkNumber, checkOptions } from '../options.js';
import createDebug from 'debug';
import { guardClient, whenReady } from './connection.js';
import { MIN_BULK_LIMIT, bulkLimit, checkFits, serverChecked, serverRefusal, trackServer, whenLearned, type Learned } from './limits.js';
import { Scripts, type ConsumeReply, type ScriptKeys } from './scripts.js';
import { BatchFailure, runBatch, runBatchSettled, type BatchCommand } from './batch.js';
import { DurableWriter, shortOfReplicas } from './durability.js';
import { Backoff, retryFaults } from './retry.js';
import { clientKind } from './client-kind.js';
import { isDedupeKey } from '../dedupe/key.js';
import { evictReference } from '../dedupe/refs.js';
import { GenerationWatch, dataLostError } from './generation.js';
import { connectionConfig, optionsFromConfig, type FromConfigOptions } from './config.js';
import { isWrongType } from '../chunks/format.js';
import { ChunkGone, readChunked, readManifest, readRange } from '../chunks/read.js';
import type { Manifest } from '../chunks/format.js';
import { dropStaged, stageLarge, type Staged } from '../chunks/put.js';
import { RawTransfers } from './raw.js';
import './parser-timer.js';

export type { FromConfigOptions } from './config.js';

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
  /**
   * Extra ioredis Cluster options for a client made from `nodes`. They
   * override the connector's defaults, which are sized so that ioredis
   * follows redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a closed
   * connection to a master that died) for most of the command timeout, but
   * gives up before it: `maxRedirections` = command timeout / 250 ms (40
   * for 10 s, at least 4), `retryDelayOnFailover` and
   * `retryDelayOnClusterDown` 200 ms, `retryDelayOnTryAgain` 100 ms,
   * `retryDelayOnMoved` 0. The library then sends the call again itself
   * until the command timeout, and a storm that outlasts it fails with a
   * ClusterReconfiguringError, never with a bare timeout (a timeout says
   * nothing of whether the command ran).
   */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
  /**
   * Milliseconds after which a command made through a client the connector
   * created fails with a timeout error instead of waiting (for a Redis that
   * is stuck, or a connection that died with the command on it); an integer
   * from 1 to 2,147,483,647 (Node's longest timer). Default 10,000. A client
   * you pass in keeps its own `commandTimeout`. On a Redis Cluster it is also
   * how long a call the cluster turns away (a slot migrating, a failover) is
   * sent again before it fails with a `ClusterReconfiguringError`.
   */
  commandTimeoutMs?: number;
  /**
   * @deprecated The old name of {@link RedisConnectorOptions.commandTimeoutMs}
   * (ioredis's name, in milliseconds too); every other time option of this
   * library is in seconds, so the unit is now in the name.
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
  /**
   * The most connections this connector opens for waits on futures
   * (`future.result()`, a future proxy's resolve), which block in Redis and
   * so cannot share the command connection. Waits share them: on a single
   * Redis one blocking read serves many futures; on a Cluster, one per slot,
   * and slots beyond the bound take turns. An integer from 1 to 1,000.
   * Default 8.
   */
  maxBlockingConnections?: number;
  /**
   * Writes acknowledged by replicas (see docs/durability.md). Redis
   * replicates asynchronously, so without this a failover can undo what a
   * master acknowledged. With it, every write of the library (consume,
   * borrow, mutBorrow, release, update, drop, put, putBatch and the lifetime
   * scripts) is followed by `WAIT replicas timeout` on the same connection to
   * the same master, and succeeds only once `replicas` replicas have it;
   * otherwise it is sent again (safely: same tokens) until the command
   * timeout, then fails with a {@link DurabilityError}. Writes that start
   * together share one WAIT per master (group commit). Off by default: no
   * extra round trip.
   */
  durability?: DurabilityOptions;
}

/** The `durability` option of {@link RedisConnectorOptions}. */
export interface DurabilityOptions {
  /** How many replicas must acknowledge each write: an integer from 1 to 100. */
  replicas: number;
  /**
   * How long one WAIT waits for them, in seconds (like every time option of
   * the library without `Ms` in its name): from 0.001 to less than the
   * command timeout. Default 1.
   */
  timeout?: number;
}

/**
 * The serializable configuration of a connector (see {@link RedisConnector.config}):
 * JSON-safe, and never a password or TLS key.
 */
export interface RedisConnectorConfig {
  kind: 'redis';
  namespace: string;
  /** `redis://[user@]host:port/db` (or `rediss://`), without a password. */
  url?: string;
  /** Cluster seed nodes. */
  nodes?: ClusterNode[];
  /** Whether the connection uses TLS (the certificates themselves are not recorded). */
  tls?: boolean;
  /** The non-secret, JSON-safe ioredis options (no password, TLS material or functions). */
  redisOptions?: RedisOptions;
  /** The non-secret, JSON-safe ioredis Cluster options. */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
  commandTimeoutMs?: number;
  /** See {@link RedisConnectorOptions.maxBlockingConnections}; absent: the default. */
  maxBlockingConnections?: number;
  /** The connector's {@link RedisConnectorOptions.durability}. */
  durability?: DurabilityOptions;
  /** @deprecated configs before `commandTimeoutMs`; still read by `fromConfig`. */
  commandTimeout?: number;
}

const CONNECTOR_OPTIONS = [
  'url',
  'nodes',
  'client',
  'namespace',
  'redisOptions',
  'clusterOptions',
  'commandTimeoutMs',
  'commandTimeout',
  'unrefWhenIdle',
  'maxBlockingConnections',
  'durability',
] as const;

/** Range of `maxBlockingConnections`. */
const MAX_BLOCKING = { min: 1, max: 1000, integer: true };
/** Default of `maxBlockingConnections`: enough for a few slots' worth of waits in parallel, few enough for any server. */
const DEFAULT_MAX_BLOCKING = 8;

/** Range of `commandTimeoutMs`: a whole millisecond up to Node's longest timer. */
const COMMAND_TIMEOUT = { unit: 'milliseconds', min: 1, max: 2 ** 31 - 1, integer: true };

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
  /** The most blocking connections (future waits) this connector opens; see {@link RedisConnectorOptions.maxBlockingConnections}. */
  readonly maxBlockingConnections: number;
  private readonly givenMaxBlocking: boolean;
  private readonly ownsClient: boolean;
  private readonly commandTimeoutMs: number | undefined;
  /** What a client the connector created was made from (for {@link config}). */
  private readonly given: Parameters<typeof connectionConfig>[2];
  private closed = false;
  private readonly writeObservers = new Set<(operation: string, key: string | undefined) => void>();
  /** With the `durability` option: how writes are sent (see ./durability.ts). */
  private readonly durable: DurableWriter | undefined;
  /** The `durability` option as given (for {@link config}). */
  private readonly durabilityGiven: DurabilityOptions | undefined;
  /** The servers' generation markers (see ./generation.ts). */
  private readonly generations: GenerationWatch;
  /** The raw chunk connections (see ./raw.ts), opened on the first chunk transfer. @internal */
  readonly raw: RawTransfers;

  /**
   * Checks every option; a client it creates connects lazily (at the first
   * command or {@link ready}), so a connector that is never used, or a Store
   * constructor that throws, leaves no connection open.
   *
   * @throws {@link InvalidOptionsError} naming a bad or unknown option, or a `client` that is not an ioredis 5 client.
   */
  constructor(options: RedisConnectorOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionsError('RedisConnector needs options: { url | nodes | client, namespace }');
    }
    checkOptions('new RedisConnector', options, CONNECTOR_OPTIONS);
    this.namespace = validateNamespace(options.namespace);
    this.keys = new KeySpace(this.namespace);
    this.givenMaxBlocking = options.maxBlockingConnections !== undefined;
    this.maxBlockingConnections = this.givenMaxBlocking
      ? checkNumber('maxBlockingConnections', options.maxBlockingConnections, MAX_BLOCKING)
      : DEFAULT_MAX_BLOCKING;
    const given = (['url', 'nodes', 'client'] as const).filter((k) => options[k] !== undefined);
    if (given.length !== 1) {
      throw new InvalidOptionsError(
        `RedisConnector needs exactly one of \`url\`, \`nodes\` or \`client\`, got ${given.length ? given.join(' and ') : 'none'}`,
      );
    }
    if (options.client !== undefined) {
      for (const name of ['commandTimeoutMs', 'commandTimeout', 'redisOptions', 'clusterOptions', 'unrefWhenIdle'] as const) {
        if (options[name] !== undefined) {
          throw new InvalidOptionsError(`RedisConnector: \`${name}\` applies only to a client the connector creates; set it on your own client instead`);
        }
      }
      clientKind(options.client); // throws on anything that is not an ioredis 5 client
      this.client = options.client;
      this.ownsClient = false;
      this.commandTimeoutMs = undefined;
      this.given = undefined;
    } else {
      if (options.commandTimeoutMs !== undefined && options.commandTimeout !== undefined) {
        throw new InvalidOptionsError('RedisConnector: give `commandTimeoutMs` or its old name `commandTimeout`, not both');
      }
      const givenTimeout = options.commandTimeoutMs ?? options.commandTimeout;
      const timeoutName = options.commandTimeoutMs !== undefined ? 'commandTimeoutMs' : 'commandTimeout';
      const commandTimeout = givenTimeout === undefined ? DEFAULT_COMMAND_TIMEOUT_MS : checkNumber(timeoutName, givenTimeout, COMMAND_TIMEOUT);
      this.commandTimeoutMs = commandTimeout;
      if (options.redisOptions !== undefined) checkPlainObject('redisOptions', options.redisOptions);
      if (options.clusterOptions !== undefined) checkPlainObject('clusterOptions', options.clusterOptions);
      if (options.unrefWhenIdle !== undefined && typeof options.unrefWhenIdle !== 'boolean') {
        throw new InvalidOptionsError(`unrefWhenIdle must be a boolean, got ${typeof options.unrefWhenIdle}`);
      }
      this.given = {
        ...(typeof options.url === 'string' ? { url: options.url } : {}),
        ...(options.redisOptions ? { redisOptions: options.redisOptions } : {}),
        ...(options.clusterOptions ? { clusterOptions: options.clusterOptions } : {}),
      };
      // Lazy: nothing is opened before the first command (see the constructor's doc).
      const created = { lazyConnect: true, commandTimeout };
      if (options.url !== undefined) {
        const url = options.url;
        if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
          throw new InvalidOptionsError(`RedisConnector \`url\` must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
        }
        const client = new Redis(url, { ...created, ...options.redisOptions });
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
        this.client = new Cluster(
          nodes.map((n) => ({ host: n.host, port: n.port })),
          {
            lazyConnect: true,
            ...clusterDefaults(commandTimeout),
            ...options.clusterOptions,
            redisOptions: { commandTimeout, ...options.redisOptions },
          },
        );
      }
      // Connection errors reach callers as rejected commands that name them
      // (see ./connection.ts); without a listener ioredis would also print
      // every reconnect attempt.
      this.client.on('error', (err: Error) => log('connection error (%s): %s', this.namespace, err.message));
      guardClient(this.client, commandTimeout);
      this.ownsClient = true;
    }
    const isCluster = clientKind(this.client) === 'cluster';
    if (options.durability !== undefined) {
      this.durable = new DurableWriter(this, checkDurability(options.durability, this.commandDeadlineMs()));
      this.durabilityGiven = { ...options.durability };
    }
    this.scripts = new Scripts(this.client, {
      beforeRun: () => serverChecked(this.client),
      cluster: isCluster,
      timeoutMs: () => this.commandDeadlineMs(),
      afterRun: (name, key) => this.wrote(name, key),
      ...(this.durable ? { writer: this.durable } : {}),
    });
    trackServer(this.client, this.namespace);
    this.raw = new RawTransfers(this.client, isCluster, () => this.commandDeadlineMs());
    this.generations = new GenerationWatch(this.client, this.namespace, isCluster);
  }

  /**
   * Write no generation marker (the command line, which only reads).
   * @internal
   */
  forgetGeneration(): void {
    this.generations.stop();
  }

  /**
   * After a call found `redisKey` (a key of this namespace) missing, or a
   * handle's lease gone: the {@link RedisDataLostError} to throw instead when
   * its server lost its data since this connector first saw it (one or two
   * commands, only on this error path). `what` starts the message.
   * @internal
   */
  async dataLost(redisKey: string, what: string, context: ErrorContext): Promise<ProxyStoreError | undefined> {
    const loss = await this.generations.check(redisKey);
    return loss ? dataLostError(loss, what, context) : undefined;
  }

  /** {@link dataLost} for the objects of many store keys (one check per master). @internal */
  async dataLostMany(keys: readonly string[], what: string): Promise<(ProxyStoreError | undefined)[]> {
    const losses = await this.generations.checkMany(keys.map((k) => this.dataKey(k)));
    return losses.map((loss, i) => (loss ? dataLostError(loss, what, { key: keys[i] as string }) : undefined));
  }

  /**
   * How long a call may be sent again while a Redis Cluster reconfigures
   * (ms, from its first attempt): the command timeout of the client (this
   * connector's `commandTimeoutMs`, or your client's `commandTimeout`),
   * 10,000 when it has none.
   * @internal
   */
  commandDeadlineMs(): number {
    if (this.commandTimeoutMs !== undefined) return this.commandTimeoutMs;
    const options = (this.client as { options?: { commandTimeout?: unknown; redisOptions?: { commandTimeout?: unknown } } }).options;
    const own = this.isCluster ? options?.redisOptions?.commandTimeout : options?.commandTimeout;
    return typeof own === 'number' && own > 0 ? own : DEFAULT_COMMAND_TIMEOUT_MS;
  }

  /**
   * Run single-slot commands as one batch (one pipeline per master on a
   * Cluster, following its redirections until the command timeout: see
   * ./batch.ts); their replies in order. Throws the batch's error, or a
   * BatchFailure (with what was done) when `failure` is true.
   * @internal
   */
  async batch(commands: readonly BatchCommand[], operation: string, context: ErrorContext = {}, write = true): Promise<unknown[]> {
    try {
      return await this.runWrites(commands, operation, context, write);
    } catch (err) {
      throw err instanceof BatchFailure ? err.error : err;
    } finally {
      this.wrote(operation, undefined);
    }
  }

  /**
   * Call `observer` after every script, batch and eviction this connector
   * runs, whatever its outcome, with the store key when there is one (the
   * object cache, src/cache/, drops what they may have changed). Returns the
   * unsubscribe.
   * @internal
   */
  observeWrites(observer: (operation: string, key: string | undefined) => void): () => void {
    this.writeObservers.add(observer);
    return () => this.writeObservers.delete(observer);
  }

  private wrote(operation: string, key: string | undefined): void {
    for (const observer of this.writeObservers) observer(operation, key);
  }

  /**
   * runBatch, followed by WAIT per master with the `durability` option (for
   * writes); a BatchFailure with a DurabilityError (every command done) when
   * a master's replicas fell short.
   */
  private async runWrites(commands: readonly BatchCommand[], operation: string, context: ErrorContext, write = true): Promise<unknown[]> {
    if (!this.durable || !write) return runBatch(this, commands, operation, context);
    const { durability } = this.durable;
    const result = await runBatchSettled(this, commands, operation, context, { wait: durability });
    const least = Math.min(...result.acked);
    if (least < durability.replicas) {
      throw new BatchFailure(
        shortOfReplicas(commands.length > 1 ? `${operation} (${commands.length} commands)` : operation, context, least, durability),
        commands.map(() => true),
        commands.map(() => false),
      );
    }
    return result.replies;
  }

  /**
   * A single-key command (`send` makes a fresh attempt each time), sent again
   * while a Redis Cluster reconfigures (see ./retry.ts); errors classified.
   * @internal
   */
  command<T>(operation: string, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return retryFaults(send, { operation, context, timeoutMs: this.commandDeadlineMs(), cluster: this.isCluster });
  }

  /** Whether the client is a Redis Cluster client. */
  get isCluster(): boolean {
    return clientKind(this.client) === 'cluster';
  }

  /**
   * Resolves once the connection is up and the server checked (Redis 7.0 or
   * later); rejects with a {@link RedisOperationError} naming the connection
   * error (`connect ECONNREFUSED 127.0.0.1:6399`) or the server's version.
   * Starts the connection if nothing has yet. Optional: every command
   * connects by itself.
   *
   * @example
   * ```ts
   * const connector = new RedisConnector({ url, namespace: 'app' });
   * await connector.ready(); // fail at start-up, not at the first put
   * ```
   */
  async ready(): Promise<void> {
    if (this.closed) throw new RedisOperationError(`RedisConnector (namespace ${this.namespace}) is closed`);
    try {
      await whenReady(this.client);
      await (serverChecked(this.client) ?? Promise.resolve());
    } catch (err) {
      throw errorFromReply(err, 'connect', {});
    }
  }

  /**
   * Split `redisKeys` (by index) into groups that one pipeline can carry: all
   * of them on a single Redis; one group per master node on a Cluster, by
   * the client's slot map as it is now (a reshard or failover can change it
   * before the pipeline is sent: the library's own batches go through
   * `batch`, which follows such changes).
   */
  async groupsByNode(redisKeys: string[]): Promise<number[][]> {
    if (!this.isCluster) return [redisKeys.map((_, i) => i)];
    const client = this.client as Cluster;
    if (client.status !== 'ready') await this.ready();
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
   * Call `listener` with what the server says about itself each time a
   * connection learns it (never connects by itself); returns the way to stop.
   * @internal
   */
  whenServerLearned(listener: (learned: Learned) => void): () => void {
    return whenLearned(this.client, listener);
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

  /**
   * Store many byte strings in one round trip; with `ttlMs`, each expires
   * that many milliseconds after it is written.
   */
  async putBatch(values: Uint8Array[], ttlMs?: number): Promise<string[]> {
    const keys = values.map(() => this.newKey());
    if (keys.length === 1) await this.set(keys[0] as string, values[0] as Uint8Array, ttlMs);
    else await this.setBatch(keys, values, ttlMs);
    return keys;
  }

  /**
   * Write bytes under a given key (overwrites); with `ttlMs`, the key expires
   * that many milliseconds later (one `SET ... PX`).
   */
  set(key: string, bytes: Uint8Array, ttlMs?: number): Promise<unknown> {
    if (bytes.byteLength > MIN_BULK_LIMIT) return this.checkFits([bytes], 'put').then(() => this.write(key, bytes, ttlMs));
    return this.write(key, bytes, ttlMs);
  }

  /**
   * Store objects that allow `reads` (2 or more) consuming reads: each with
   * its rules record, in one script call per object (lua/objectPut.lua),
   * pipelined (one pipeline per master on a Cluster); with `ttlMs`, both
   * keys of each expire then. Returns the new keys. (`store.put(v, { reads })`
   * is the way to use it: the Store serializes and checks the options.)
   *
   * @example
   * ```ts
   * const [key] = await connector.putWithReads([Buffer.from('job')], 3, 60_000);
   * // three consuming reads of `key` (connector.consume) get the bytes; the third deletes them
   * ```
   */
  async putWithReads(values: Uint8Array[], reads: number, ttlMs: number | undefined, chunkSize?: number): Promise<string[]> {
    await this.refused('objectPut', {});
    await this.checkFits(chunkSize === undefined ? values : values.filter((v) => v.byteLength <= chunkSize), 'put');
    const keys = values.map(() => this.newKey());
    // Values over chunkSize: their chunks first, to staging hashes the script renames (src/chunks/).
    const staged = await stageLarge(this, keys, values, chunkSize);
    const call = (i: number) => {
      const s = staged[i];
      const data = this.dataKey(keys[i] as string);
      return [
        { data, rules: this.keys.object('rules', keys[i] as string), stage: s ? s.stage : data },
        { value: s ? s.manifest.text : toBuffer(values[i] as Uint8Array), reads, ttlMs: ttlMs ?? 0 },
      ] as const;
    };
    try {
      return await this.putWithReadsStaged(keys, call);
    } catch (err) {
      await dropStaged(this, staged);
      throw err;
    }
  }

  /**
   * Commit the chunks staged for the new `key` (src/chunks/) as an object
   * that allows `reads` consuming reads (lua/objectPut.lua). @internal
   */
  async commitWithReads(key: string, staged: Staged, reads: number, ttlMs: number | undefined): Promise<void> {
    const data = this.dataKey(key);
    try {
      await this.putWithReadsStaged([key], () => [
        { data, rules: this.keys.object('rules', key), stage: staged.stage },
        { value: staged.manifest.text, reads, ttlMs: ttlMs ?? 0 },
      ]);
    } catch (err) {
      await dropStaged(this, [staged]);
      throw err;
    }
  }

  private async putWithReadsStaged(
    keys: string[],
    call: (i: number) => readonly [ScriptKeys<'objectPut'>, { value: Buffer | string; reads: number; ttlMs: number }],
  ): Promise<string[]> {
    if (keys.length === 1) {
      try {
        await this.scripts.run('objectPut', ...call(0), { key: keys[0] as string });
      } catch (err) {
        // As write(): a fresh key that may have been written (a lost reply, too few replicas) is removed.
        const error = errorFromReply(err, 'objectPut', { key: keys[0] as string });
        throw await this.removeWritten(keys, error, outcomeUnknown(error));
      }
      return keys;
    }
    try {
      const replies = await this.runWrites(
        keys.map((_, i) => ({ key: this.dataKey(keys[i] as string), queue: (p) => this.scripts.queue(p, 'objectPut', ...call(i)) })),
        'objectPut',
        {},
      );
      for (const reply of replies) this.scripts.decode('objectPut', reply);
    } catch (err) {
      if (!(err instanceof BatchFailure)) throw err;
      // As setBatch: what may have been written is fresh and unknown to the caller.
      const maybe = err.mayHaveRun().map((i) => keys[i] as string);
      throw await this.removeWritten(maybe, err.error, maybe.length > 0);
    }
    return keys;
  }

  /** @internal The error a plain command would reject with before sending anything (a server too old, see ./limits.ts; a WeakMap lookup), else undefined. */
  refusal(operation: string, context: ErrorContext): Error | undefined {
    const refusal = serverRefusal(this.client);
    return refusal ? errorFromReply(refusal, operation, context) : undefined;
  }

  /** Rejects when the server was found too old ({@link refusal}); nothing sent. */
  private refused(operation: string, context: ErrorContext): Promise<never> | undefined {
    const refusal = this.refusal(operation, context);
    return refusal ? Promise.reject(refusal) : undefined;
  }

  private write(key: string, bytes: Uint8Array, ttlMs?: number): Promise<unknown> {
    const refused = this.refused('SET', { key });
    if (refused) return refused;
    const data = this.dataKey(key);
    const value = toBuffer(bytes);
    if (this.durable) {
      const queue = (p: ChainableCommander) => void (ttlMs === undefined ? p.set(data, value) : p.set(data, value, 'PX', ttlMs));
      return this.durable.send({ key: data, queue }, 'SET', { key }).catch(async (err: unknown) => {
        const error = errorFromReply(err, 'SET', { key });
        throw await this.removeWritten([key], error, outcomeUnknown(error));
      });
    }
    const send = () => (ttlMs === undefined ? this.client.set(data, value) : this.client.set(data, value, 'PX', ttlMs));
    return send().catch(async (err: unknown) => {
      let error: ProxyStoreError;
      if (this.isCluster && clusterFault(err)) {
        try {
          return await this.command('SET', { key }, send);
        } catch (retried) {
          error = errorFromReply(retried, 'SET', { key });
        }
      } else {
        error = errorFromReply(err, 'SET', { key });
      }
      // The SET may have run although it failed (a lost reply, a timeout):
      // its key is fresh and the caller never learns it, so remove it.
      throw await this.removeWritten([key], error, outcomeUnknown(err) || outcomeUnknown(error));
    });
  }

  /**
   * After a failed write of fresh keys that may have run (`maybe`): unlink
   * them all (unlinking a key never written does nothing), so that nothing is
   * left without a TTL. Returns the error to throw, saying so, or naming the
   * keys that could not be removed either (`writtenKeys`).
   */
  private async removeWritten(keys: readonly string[], error: ProxyStoreError, maybe: boolean): Promise<ProxyStoreError> {
    if (!maybe || keys.length === 0) return error;
    let left: string[];
    try {
      await this.runWrites(
        // With its rules record, if the write made one (a reads budget): two
        // single-key UNLINKs (a multi-key one is refused while its slot migrates).
        keys.flatMap((k) => [this.dataKey(k), this.keys.object('rules', k)].map((key) => ({ key, queue: (p) => void p.unlink(key) }))),
        'UNLINK (clean-up)',
        {},
      );
      left = [];
    } catch (failure) {
      // Two commands per key: the key is left unless both ran.
      left = failure instanceof BatchFailure ? keys.filter((_, i) => !failure.done[2 * i] || !failure.done[2 * i + 1]) : [...keys];
    }
    if (left.length === 0) return withMessage(error, ' What it may have written was removed: nothing of it is left.');
    log('could not remove %d key(s) of a failed write: %s', left.length, left.join(' '));
    return withMessage(
      error,
      ` It may have written ${left.length} object(s) that could not be removed either (Redis unreachable): ` +
        `evict them once Redis is back: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', ...' : ''} (error.writtenKeys lists them all).`,
      { writtenKeys: left },
    );
  }

  /**
   * Write many keys in one round trip: MSETs of up to 1,000 keys
   * on a single Redis (one command per chunk is far cheaper than a SET per
   * key, for ioredis and for Redis), one SET per key on a Cluster (MSET keys
   * must share a slot), and one `SET ... PX` per key with `ttlMs` (MSET sets
   * no expiry, and each key must get its own atomically).
   */
  async setBatch(keys: string[], values: Uint8Array[], ttlMs?: number): Promise<void> {
    if (keys.length === 0) return;
    await this.refused('SET (batch)', {});
    await this.checkFits(values, 'putBatch');
    const commands: BatchCommand[] = [];
    /** The keys (by index) each command writes. */
    const written: number[][] = [];
    if (this.isCluster || ttlMs !== undefined) {
      keys.forEach((k, i) => {
        const data = this.dataKey(k);
        const value = toBuffer(values[i] as Uint8Array);
        commands.push({ key: data, queue: (p) => void (ttlMs === undefined ? p.set(data, value) : p.set(data, value, 'PX', ttlMs)) });
        written.push([i]);
      });
    } else {
      for (let start = 0; start < keys.length; start += MSET_CHUNK) {
        const args: (string | Buffer)[] = [];
        const chunk: number[] = [];
        for (let i = start; i < Math.min(keys.length, start + MSET_CHUNK); i++) {
          args.push(this.dataKey(keys[i] as string), toBuffer(values[i] as Uint8Array));
          chunk.push(i);
        }
        commands.push({ key: args[0] as string, queue: (p) => void p.mset(...args) });
        written.push(chunk);
      }
    }
    try {
      await this.runWrites(commands, 'SET (batch)', {});
    } catch (err) {
      if (!(err instanceof BatchFailure)) throw err;
      // Part of the batch may be written: those keys are fresh and the caller
      // never learns them, so remove them.
      const maybe = err.mayHaveRun().flatMap((c) => (written[c] as number[]).map((i) => keys[i] as string));
      throw await this.removeWritten(maybe, err.error, maybe.length > 0);
    }
  }

  /** The bytes under a key, or undefined when it is missing. */
  get(key: string): Promise<Buffer | undefined> {
    validateKey(key);
    const refused = this.refused('GET', { key });
    if (refused) return refused;
    const data = this.dataKey(key);
    return this.client.getBuffer(data).then(
      (bytes) => bytes ?? undefined,
      (err: unknown) => {
        // A chunked object (src/chunks/): its data key is a hash. Small values never get here.
        if (isWrongType(err)) return this.getChunked(data, key);
        if (!this.isCluster) throw errorFromReply(err, 'GET', { key });
        // On a Cluster the first failure is classified as every single-key command's is
        // (./retry.ts): a fault is sent again, a node's command timeout is a
        // ClusterReconfiguringError, anything else the usual typed error.
        let first: unknown = err;
        const send = (): Promise<Buffer | null> => {
          if (first === undefined) return this.client.getBuffer(data);
          const failed = Promise.reject(first);
          first = undefined;
          return failed;
        };
        return this.command('GET', { key }, send).then(
          (bytes) => bytes ?? undefined,
          (again: unknown) => {
            if (isWrongType(again)) return this.getChunked(data, key);
            throw again;
          },
        );
      },
    );
  }

  /**
   * The stored bytes of a chunked object (src/chunks/) at `redisKey`, in one
   * Buffer; undefined when missing. A key that holds a string again (an
   * update made it small) is read with GET.
   * @internal
   */
  async getChunked(redisKey: string, key: string): Promise<Buffer | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await readChunked(this, redisKey, key);
      } catch (err) {
        if (!isWrongType(err) || attempt >= 3) throw errorFromReply(err, 'HGET (chunks)', { key });
      }
      try {
        return (await this.command('GET', { key }, () => this.client.getBuffer(redisKey))) ?? undefined;
      } catch (err) {
        if (!isWrongType(err)) throw err;
      }
    }
  }

  /** Many keys in one round trip (one per node on a Cluster); missing ones are undefined. */
  async getBatch(keys: string[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    await this.refused('GET (batch)', {});
    const redisKeys = keys.map((k) => this.dataKey(validateKey(k)));
    // A chunked object's GET fails (WRONGTYPE): it is read by itself after.
    let result;
    try {
      result = await runBatchSettled(this, redisKeys.map((data) => ({ key: data, queue: (p) => void p.getBuffer(data) })), 'GET (batch)', {}, { settle: true });
    } catch (err) {
      throw err instanceof BatchFailure ? err.error : err;
    }
    const { replies, errors } = result;
    return Promise.all(
      // (By index: a Cluster's replies leave holes where a command failed.)
      keys.map((key, i) => {
        const err = errors[i];
        if (err === undefined) return (replies[i] as Buffer | null) ?? undefined;
        if (isWrongType(err)) return this.getChunked(redisKeys[i] as string, key);
        throw errorFromReply(err, 'GET (batch)', { key });
      }),
    );
  }

  /** The first `length` bytes under a key (a header peek that never consumes). */
  async getPrefix(key: string, length: number): Promise<Buffer | undefined> {
    validateKey(key);
    const data = this.dataKey(key);
    let bytes: Buffer;
    try {
      bytes = await this.command('GETRANGE', { key }, () => this.client.getrangeBuffer(data, 0, length - 1));
    } catch (err) {
      if (!isWrongType(err) && !(err instanceof ProxyStoreError && isWrongType(err.cause))) throw err;
      // A chunked object: its header is a field of its hash.
      const found = await readManifest(this, data, key).catch(() => undefined);
      return found?.header.subarray(0, length);
    }
    return bytes.length === 0 ? undefined : bytes;
  }

  /** Whether a key exists. */
  async exists(key: string): Promise<boolean> {
    validateKey(key);
    const data = this.dataKey(key);
    return (await this.command('EXISTS', { key }, () => this.client.exists(data))) === 1;
  }

  /**
   * Delete a key (its data, its rules record and, for a future's result, its
   * signal, which may hold a copy of a small value; one round trip); a
   * missing key is not an error. A deduped object (`sha256.<hash>`,
   * src/dedupe/) loses one put's reference instead (lua/dedupeEvict.lua),
   * and is deleted with its last.
   */
  async evict(key: string): Promise<void> {
    validateKey(key);
    if (isDedupeKey(key)) {
      try {
        await evictReference(this, key);
      } finally {
        this.wrote('evict', key);
      }
      return;
    }
    const data = this.dataKey(key);
    const rules = this.keys.object('rules', key);
    const signal = this.keys.object('sig', key);
    // Single-key UNLINKs sent together (one round trip): while a slot
    // migrates, Redis refuses a multi-key command one of whose keys is missing.
    const durable = this.durable;
    try {
      if (durable) {
        // Acknowledged by the replicas too: an evict a failover undid would bring the object back.
        await Promise.all([data, rules, signal].map((k) => durable.send({ key: k, queue: (p) => void p.unlink(k) }, 'UNLINK', { key })));
        return;
      }
      await Promise.all([
        this.command('UNLINK', { key }, () => this.client.unlink(data)),
        this.command('UNLINK', { key }, () => this.client.unlink(rules)),
        this.command('UNLINK', { key }, () => this.client.unlink(signal)),
      ]);
    } finally {
      this.wrote('evict', key);
    }
  }

  /**
   * One consuming read of a key, in one atomic step (lua/consume.lua): an
   * object without a reads budget is read and deleted, leaving a tombstone
   * that describes `consumer` for `tombstoneTtlMs`; an object with one
   * (`reads: n`) gives up one read, and the last read deletes it. The bytes
   * the deleting read took stay `graceMs` under a grace key named after
   * `token`, so that the same consumer (same token: ioredis's resend after a
   * lost reply, the library's own resend below, or the same proxy resolved
   * again after an unclear failure) still gets them, whatever the
   * tombstone's TTL; an earlier read is recognised by its token and reads
   * again without spending the budget.
   *
   * A consume whose outcome is unclear (its connection dropped after it was
   * sent) is sent again with the same token until the command timeout has
   * passed since the first attempt, so a reply lost on the way usually comes
   * back as the value. When it still fails, the error says that this very
   * call possibly consumed the object, and how to get it.
   */
  async consume(key: string, consumer: string, tombstoneTtlMs: number, token: string = randomId(), graceMs = CONSUME_GRACE_MS): Promise<ConsumeReply> {
    validateKey(key);
    const keys = this.consumeKeys(key, token);
    const args = { token, consumer, ttlMs: tombstoneTtlMs, graceMs };
    const deadline = Date.now() + this.commandDeadlineMs();
    const backoff = new Backoff();
    let unclear = false;
    for (;;) {
      try {
        const reply = await this.scripts.run('consume', keys, args, { key });
        if (reply.consumed && reply.chunked) return await this.consumedChunks(key, keys.grace, reply.chunked);
        if (reply.consumed && reply.took) this.releaseGrace(keys.grace);
        return reply;
      } catch (err) {
        unclear ||= outcomeUnknown(err);
        // A reply (the script's answer) is final; so is a failure while nothing may have run.
        if (!unclear || !(err instanceof RedisOperationError)) throw err;
        if (Date.now() + 50 >= deadline) {
          throw withMessage(
            err,
            ` The object was possibly consumed by this very call: resolve the same proxy again within ${graceMs / 1000} s ` +
              'to get it (the consumed bytes wait that long for the consumer that took them).',
            { mayHaveRun: true },
          );
        }
        await backoff.wait(deadline);
      }
    }
  }

  /**
   * A consume of a chunked object: its chunks, read from the grace copy the
   * script left for this consumer (the object itself, renamed, or a copy for
   * an earlier read of a reads: n object), which is then released.
   */
  private async consumedChunks(key: string, grace: string, manifest: Manifest): Promise<ConsumeReply> {
    let value: Buffer;
    try {
      value = await readRange(this, grace, key, manifest);
    } catch (err) {
      if (err instanceof ChunkGone) {
        throw new ProxyResolveMissingKeyError(
          `key ${key} was consumed by this call, but its chunks were gone from the grace copy before they were read (it expired after ${CONSUME_GRACE_MS / 1000} s?)`,
          { key },
        );
      }
      throw err;
    }
    this.releaseGrace(grace);
    return { consumed: true, value, took: true };
  }

  /**
   * The consumer has the value: its grace copy is no longer needed. The
   * UNLINK goes out on the next turn of the event loop, unawaited (the
   * consume's caller is not kept waiting, and a burst of consumes is not
   * interleaved with it); if it is lost (connection dropped), the copy
   * expires after its grace as before. Only a consume whose reply was lost
   * leaves a grace copy for its whole grace (docs/performance.md).
   */
  private releaseGrace(grace: string): void {
    this.graceQueue.push(grace);
    if (this.graceQueue.length > 1) return;
    // One flush per event-loop turn: the releases of a burst of consumes go
    // out together (one pipeline, one socket write, on a single server).
    const sent: Promise<void> = new Promise<void>((next) => setImmediate(next))
      .then(async (): Promise<unknown> => {
        const keys = this.graceQueue.splice(0);
        if (keys.length === 1 || this.isCluster) return Promise.all(keys.map((k) => this.client.unlink(k)));
        const pipeline = this.client.pipeline();
        for (const k of keys) pipeline.unlink(k);
        return pipeline.exec();
      })
      .then(
        () => undefined,
        (err: unknown) => log('grace copies not released: %s', (err as Error).message),
      )
      .finally(() => this.graceReleases.delete(sent));
    this.graceReleases.add(sent);
  }

  /** Grace copies to release on the next flush. */
  private readonly graceQueue: string[] = [];

  /** The grace copies being released (see releaseGrace). */
  private readonly graceReleases = new Set<Promise<void>>();

  /** Resolves once every grace copy of a consume so far has been released (or failed to be). @internal */
  async graceReleased(): Promise<void> {
    while (this.graceReleases.size > 0) await Promise.all([...this.graceReleases]);
  }

  /** The KEYS of lua/consume.lua for `key` and the consumer `token`. @internal */
  consumeKeys(key: string, token: string): ScriptKeys<'consume'> {
    const data = this.dataKey(key);
    // The lifetime whose id is the object's tag (its own members share the object's slot).
    const tag = data.slice(0, data.indexOf('}:d:') + 2);
    return {
      data,
      tombstone: this.keys.object('tomb', key),
      grace: this.keys.graceCopy(key, token),
      rules: this.keys.object('rules', key),
      members: `${tag}members`,
      ends: `${tag}ends`,
    };
  }

  /** The consume tombstone of a key, if it was consumed recently. */
  async tombstone(key: string): Promise<Buffer | undefined> {
    const tomb = this.keys.object('tomb', key);
    return (await this.command('GET', { key }, () => this.client.getBuffer(tomb))) ?? undefined;
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Close the client if this connector created it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generations.stop();
    this.raw.close();
    // The consumes just made release their grace copies before the connection goes.
    await this.graceReleased();
    if (!this.ownsClient) return;
    // A lazy client that never connected has nothing to say goodbye to
    // (QUIT would open a connection first).
    if (this.client.status === 'wait' || this.client.status === 'end') {
      this.client.disconnect();
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * The configuration to rebuild this connector elsewhere
   * ({@link RedisConnector.fromConfig}): the address (URL or cluster nodes,
   * database, user name, whether TLS is on) and the non-secret options. It
   * never holds a password or TLS material, so it is safe to log or send;
   * `fromConfig` takes the password separately. Works for a connector made
   * from your own Redis or Cluster client too (its address is read from the
   * client; a client on a Unix socket or behind Sentinel has none to record).
   *
   * @example
   * ```ts
   * const config = connector.config();
   * // { kind: 'redis', namespace: 'app', url: 'redis://app@10.0.0.5:6379/0', ... }
   * ```
   */
  config(): RedisConnectorConfig {
    const config: RedisConnectorConfig = {
      kind: 'redis',
      namespace: this.namespace,
      ...connectionConfig(this.client, clientKind(this.client), this.given),
    };
    if (this.commandTimeoutMs !== undefined) config.commandTimeoutMs = this.commandTimeoutMs;
    if (this.givenMaxBlocking) config.maxBlockingConnections = this.maxBlockingConnections;
    if (this.durabilityGiven !== undefined) config.durability = { ...this.durabilityGiven };
    return config;
  }

  /**
   * Rebuild a connector from {@link RedisConnector.config}. The password
   * comes from `options.password`, else from the environment variable
   * `PROXYSTORE_REDIS_PASSWORD`, else there is none (a URL of an older config
   * that still holds one keeps it). `options.redisOptions` adds what a config
   * cannot hold (TLS certificates, functions such as `retryStrategy`).
   *
   * @example
   * ```ts
   * const connector = RedisConnector.fromConfig(config, { password: process.env.REDIS_PASSWORD });
   * ```
   */
  static fromConfig(config: RedisConnectorConfig, options: FromConfigOptions = {}): RedisConnector {
    return new RedisConnector(optionsFromConfig(config, options));
  }
}

function checkPlainObject(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionsError(`RedisConnector \`${name}\` must be an object of ioredis options, got ${value === null ? 'null' : typeof value}`);
  }
}

/** Default command timeout of clients the connector creates. */
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/**
 * ioredis Cluster options for a cluster the connector creates: redirections
 * followed for most of the command timeout, not ioredis's 16 (about 1.6 s,
 * less than a failover), with a short pause when there is no answer to
 * follow, and given up before the timeout (at most 200 ms per redirection),
 * so that the library's own retry (./retry.ts) sees the cluster's answer and
 * classifies it (see {@link RedisConnectorOptions.clusterOptions}).
 */
export function clusterDefaults(commandTimeoutMs: number): Omit<ClusterOptions, 'redisOptions'> {
  return {
    maxRedirections: Math.max(4, Math.floor(commandTimeoutMs / 250)),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
  };
}

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
