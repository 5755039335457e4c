/**
 * The command line's connection: a {@link RedisConnector} (so keys and
 * scripts are the library's own) on a client that fails fast. No reconnect
 * loop, no offline queue that waits forever, a deadline on connecting, and a
 * timeout on every command: a wrong URL ends in one clear line within the
 * timeout, never in a hang.
 *
 * A `--url` that points at a node of a Redis Cluster is detected (`INFO
 * cluster`) and the cluster is used instead, so that SCAN visits every master.
 *
 * @module
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { RedisConnector, type ClusterNode } from '../redis/connector.js';
import { redactUrl } from './args.js';

/** A failure to reach Redis: exit code 1. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
}

/** What the command line talks to. */
export interface Connection {
  connector: RedisConnector;
  client: Redis | Cluster;
  /** The clients to SCAN: every master of a cluster, or the one server. */
  masters(): Redis[];
  isCluster: boolean;
  /** For humans: `redis://127.0.0.1:6379`, `cluster of 3 masters, seeds 10.0.0.1:7000,...` or `cluster of 3 masters, detected at 10.0.0.1:7000`. */
  describe(): string;
  close(): void;
}

export interface ConnectOptions {
  url: string;
  /** Seed nodes of a cluster (`--cluster`). */
  cluster?: ClusterNode[] | undefined;
  namespace: string;
  timeoutMs: number;
}

/** Credentials and TLS of a URL, to reuse for every cluster node (a cluster has only database 0). */
function urlOptions(url: string): RedisOptions {
  const u = new URL(url);
  const out: RedisOptions = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') out.tls = {};
  return out;
}

function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return redactUrl(url);
  }
}

/** Client options that fail fast instead of retrying (the connector adds commandTimeout). */
function failFast(timeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableAutoPipelining: true,
    connectionName: 'proxystore-redis-cli',
    // After disconnect() ioredis waits this long for a socket that never
    // opened (or a server that never answers) to close: 2 s by default, which
    // kept a failed run alive for 2 s more.
    disconnectTimeout: 200,
  };
}

/**
 * Wait for `client.connect()` at most `timeoutMs`; the error says where and
 * why (the last 'error' event has the real reason: ioredis's own rejection
 * is only "Connection is closed.").
 */
async function connectWithin(client: Redis | Cluster, where: string, timeoutMs: number): Promise<void> {
  let last: Error | undefined;
  const onError = (err: Error) => (last = err);
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectError(`cannot connect to Redis at ${where} within ${timeoutMs / 1000} s (is the URL right?)`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), deadline]);
  } catch (err) {
    client.disconnect();
    if (err instanceof ConnectError) throw err;
    const reason = (last ?? (err as Error)).message.replace(/\s+/g, ' ').trim();
    throw new ConnectError(`cannot connect to Redis at ${where}: ${reason}`);
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}

/** Whether the server is a node of a Redis Cluster (INFO refused: assume not). */
async function isClusterNode(client: Redis): Promise<boolean> {
  try {
    return /^cluster_enabled:1\s*$/m.test(await client.info('cluster'));
  } catch {
    return false;
  }
}

function makeCluster(nodes: ClusterNode[], fromUrl: RedisOptions, options: ConnectOptions): RedisConnector {
  const { lazyConnect, enableAutoPipelining, ...perNode } = failFast(options.timeoutMs);
  const clusterOptions: Omit<ClusterOptions, 'redisOptions'> = {
    lazyConnect,
    enableAutoPipelining,
    clusterRetryStrategy: () => null,
    slotsRefreshTimeout: options.timeoutMs,
    maxRedirections: 4,
  };
  const connector = new RedisConnector({
    nodes,
    namespace: options.namespace,
    commandTimeout: options.timeoutMs,
    redisOptions: { ...perNode, ...fromUrl },
    clusterOptions,
  });
  // The command line only reads (and gc evicts through its script): no generation marker.
  connector.forgetGeneration();
  return connector;
}

function connection(connector: RedisConnector, describe: string): Connection {
  const client = connector.client;
  return {
    connector,
    client,
    isCluster: client instanceof Cluster,
    masters: () => (client instanceof Cluster ? client.nodes('master') : [client]),
    describe: () => (client instanceof Cluster ? `cluster of ${client.nodes('master').length} masters, ${describe}` : describe),
    close: () => client.disconnect(),
  };
}

/** Connect, or throw a {@link ConnectError} within about `timeoutMs`. */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const fromUrl = urlOptions(options.url);
  if (options.cluster) {
    const connector = makeCluster(options.cluster, fromUrl, options);
    const where = options.cluster.map((n) => `${n.host}:${n.port}`).join(',');
    await connectWithin(connector.client, `cluster ${where}`, options.timeoutMs);
    return connection(connector, `seeds ${where}`);
  }
  const connector = new RedisConnector({
    url: options.url,
    namespace: options.namespace,
    commandTimeout: options.timeoutMs,
    redisOptions: failFast(options.timeoutMs),
  });
  connector.forgetGeneration();
  const where = hostPort(options.url);
  await connectWithin(connector.client, where, options.timeoutMs);
  const single = connector.client as Redis;
  if (!(await isClusterNode(single))) return connection(connector, redactUrl(options.url));

  // A cluster node: use the cluster, seeded with this node.
  single.disconnect();
  const seed = { host: single.options.host ?? '127.0.0.1', port: single.options.port ?? 6379 };
  const cluster = makeCluster([seed], fromUrl, options);
  await connectWithin(cluster.client, `cluster ${where}`, options.timeoutMs);
  return connection(cluster, `detected at ${where}`);
}
