/**
 * A connector's configuration: what `connector.config()` records and how
 * `RedisConnector.fromConfig` turns it back into options.
 *
 * A config is JSON-safe and holds no secret: the address (a URL without its
 * password, or cluster seed nodes), the database, the user name, whether TLS
 * is on, and the plain (string, number, boolean) ioredis options that are not
 * credentials. It is read from the client itself, so a connector made from
 * your own Redis or Cluster client has one too. The password is given again
 * to `fromConfig` (or found in `PROXYSTORE_REDIS_PASSWORD`); TLS material and
 * functions (`retryStrategy`, ...) go in its `redisOptions`.
 *
 * @module
 */
import { Redis, type Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { InvalidOptionsError } from '../errors.js';
import { checkOptions } from '../options.js';
import type { ClientKind } from './client-kind.js';
import type { ClusterNode, RedisConnectorConfig, RedisConnectorOptions } from './connector.js';

/** Environment variable: the Redis password `fromConfig` uses when none is given. */
export const ENV_PASSWORD = 'PROXYSTORE_REDIS_PASSWORD';

/** Options of `RedisConnector.fromConfig`: what a config does not carry. */
export interface FromConfigOptions {
  /** The Redis password (default: `PROXYSTORE_REDIS_PASSWORD`, else none). */
  password?: string;
  /** More ioredis options, e.g. `tls: { ca }` or a `retryStrategy`; they win over the config's. */
  redisOptions?: RedisOptions;
  /** More ioredis Cluster options. */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
}

const FROM_CONFIG_OPTIONS = ['password', 'redisOptions', 'clusterOptions'] as const;

/** Option names that are credentials or certificates (never recorded). */
const SECRET = /pass|secret|token|auth|cert|^key$|pfx|^ca$|tls|sentinel/i;
/** Recorded elsewhere in the config, or set by the connector itself. */
const ADDRESS = new Set(['host', 'port', 'path', 'db', 'username', 'lazyConnect', 'commandTimeout', 'redisOptions', 'natMap']);

/** The plain, non-secret entries of an options object; with `defaults`, only those that differ from them. */
function publicOptions(options: object | undefined, defaults: Record<string, unknown> = {}): Record<string, string | number | boolean> | undefined {
  if (!options) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(options)) {
    if (SECRET.test(name) || ADDRESS.has(name)) continue;
    if (typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) continue;
    if (defaults[name] === value) continue;
    out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** `redis://user@host:port/db` for a client's own options. */
function urlOf(options: RedisOptions): string | undefined {
  if (options.path || !options.host) return undefined;
  const user = options.username ? `${encodeURIComponent(options.username)}@` : '';
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return `${options.tls ? 'rediss' : 'redis'}://${user}${host}:${options.port ?? 6379}/${options.db ?? 0}`;
}

/** A URL without its password (the user name stays). */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1@');
  }
}

function nodesOf(startupNodes: unknown): ClusterNode[] | undefined {
  if (!Array.isArray(startupNodes)) return undefined;
  const nodes: ClusterNode[] = [];
  for (const node of startupNodes as unknown[]) {
    if (typeof node === 'number') nodes.push({ host: '127.0.0.1', port: node });
    else if (typeof node === 'string') {
      const match = /^(?:redis:\/\/)?\[?([^\]]+?)\]?:(\d+)$/.exec(node);
      if (!match) return undefined;
      nodes.push({ host: match[1] as string, port: Number(match[2]) });
    } else if (typeof node === 'object' && node !== null && typeof (node as ClusterNode).port === 'number') {
      nodes.push({ host: (node as Partial<ClusterNode>).host ?? '127.0.0.1', port: (node as ClusterNode).port });
    } else return undefined;
  }
  return nodes;
}

/**
 * The address and public options of a client, as a config records them. For
 * a client the connector created, `given` holds what it was made from (the
 * URL as given, minus its password, and the options the caller chose).
 */
export function connectionConfig(
  client: Redis | Cluster,
  kind: ClientKind,
  given?: { url?: string; redisOptions?: RedisOptions; clusterOptions?: Omit<ClusterOptions, 'redisOptions'> },
): Omit<RedisConnectorConfig, 'kind' | 'namespace'> {
  const out: Omit<RedisConnectorConfig, 'kind' | 'namespace'> = {};
  if (kind === 'redis') {
    const options = (client as Redis).options;
    const url = given?.url !== undefined ? withoutPassword(given.url) : urlOf(options);
    if (url !== undefined) out.url = url;
    if (options.tls || url?.startsWith('rediss:')) out.tls = true;
    const redisOptions = given ? publicOptions(given.redisOptions) : publicOptions(options, (Redis as unknown as { defaultOptions: Record<string, unknown> }).defaultOptions);
    if (redisOptions) out.redisOptions = redisOptions as RedisOptions;
    return out;
  }
  const cluster = client as unknown as { startupNodes?: unknown; options: ClusterOptions };
  const nodes = nodesOf(cluster.startupNodes);
  if (nodes) out.nodes = nodes;
  const nodeOptions = cluster.options.redisOptions ?? {};
  if (nodeOptions.tls) out.tls = true;
  const redisOptions = publicOptions(given ? given.redisOptions : nodeOptions);
  const username = nodeOptions.username;
  if (redisOptions || username) out.redisOptions = { ...redisOptions, ...(username ? { username } : {}) } as RedisOptions;
  const clusterOptions = publicOptions(given ? given.clusterOptions : cluster.options, given ? {} : CLUSTER_DEFAULTS);
  if (clusterOptions) out.clusterOptions = clusterOptions as Omit<ClusterOptions, 'redisOptions'>;
  return out;
}

/** ioredis 5's Cluster defaults (the plain ones), so a config records only what was chosen. */
const CLUSTER_DEFAULTS: Record<string, unknown> = {
  enableOfflineQueue: true,
  enableReadyCheck: true,
  scaleReads: 'master',
  maxRedirections: 16,
  retryDelayOnMoved: 0,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  slotsRefreshTimeout: 1000,
  useSRVRecords: false,
  enableAutoPipelining: false,
  shardedSubscribers: false,
};

/**
 * ioredis reads `redis://user@host` as the password '' and lets the URL win
 * over `redisOptions.password`, so a password given to fromConfig goes into
 * the URL (unless the URL of an older config already holds one).
 */
function withPasswordInUrl(url: string, password: string): string {
  try {
    const u = new URL(url);
    if (!u.password) u.password = encodeURIComponent(password);
    return u.toString();
  } catch {
    return url;
  }
}

/** Connector options from a config and what it cannot carry. */
export function optionsFromConfig(config: RedisConnectorConfig, extra: FromConfigOptions): RedisConnectorOptions {
  if (typeof config !== 'object' || config === null || config.kind !== 'redis') {
    throw new InvalidOptionsError(`not a RedisConnector config: ${JSON.stringify(config)}`);
  }
  checkOptions('RedisConnector.fromConfig', extra, FROM_CONFIG_OPTIONS);
  if (config.url === undefined && config.nodes === undefined) {
    throw new InvalidOptionsError(
      `RedisConnector config for namespace ${config.namespace} has no url or nodes (its client connects through a Unix socket or Sentinel); ` +
        'make the connector from a client instead',
    );
  }
  const password = extra.password ?? process.env[ENV_PASSWORD];
  if (password !== undefined && typeof password !== 'string') throw new InvalidOptionsError('fromConfig: `password` must be a string');
  const timeout = config.commandTimeoutMs ?? config.commandTimeout;
  const redisOptions: RedisOptions = {
    ...config.redisOptions,
    ...(password && config.url === undefined ? { password } : {}),
    ...(config.tls && !config.url?.startsWith('rediss:') ? { tls: {} } : {}),
    ...extra.redisOptions,
  };
  const options: RedisConnectorOptions = {
    namespace: config.namespace,
    ...(timeout !== undefined ? { commandTimeoutMs: timeout } : {}),
    ...(config.maxBlockingConnections !== undefined ? { maxBlockingConnections: config.maxBlockingConnections } : {}),
    ...(Object.keys(redisOptions).length > 0 ? { redisOptions } : {}),
    ...(config.durability !== undefined ? { durability: config.durability } : {}),
  };
  if (config.url !== undefined) return { ...options, url: password ? withPasswordInUrl(config.url, password) : config.url };
  const clusterOptions = { ...config.clusterOptions, ...extra.clusterOptions };
  return { ...options, nodes: config.nodes as ClusterNode[], ...(Object.keys(clusterOptions).length > 0 ? { clusterOptions } : {}) };
}
