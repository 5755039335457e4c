/**
 * Recognising an ioredis client given to `new RedisConnector({ client })`.
 *
 * `instanceof` fails for a client made by another copy of ioredis (another
 * `node_modules`, a bundler's copy, another major), although such a client
 * works: the connector needs only ioredis's public API (`defineCommand`,
 * `pipeline`, `sendCommand`, the `*Buffer` commands and its events). So a
 * client is recognised by duck-typing, with `isCluster` (set by ioredis 4 and
 * later on both classes) telling a Cluster from a Redis. What cannot work is
 * refused with a message saying what differs: ioredis 6 speaks RESP3 by
 * default, whose replies the library does not decode, so a client with
 * `protocol: 3` is refused and told to pass `protocol: 2`.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { Cluster, Redis } from 'ioredis';
import { InvalidOptionsError } from '../errors.js';

/** What kind of ioredis client a connector talks through. */
export type ClientKind = 'redis' | 'cluster';

const METHODS = ['sendCommand', 'defineCommand', 'pipeline', 'on', 'off', 'once', 'quit', 'disconnect', 'connect'] as const;

/** The version of the ioredis this library imports, for messages. */
export const IOREDIS_VERSION: string = (() => {
  try {
    const require = createRequire(import.meta.url);
    return (require('ioredis/package.json') as { version: string }).version;
  } catch {
    return '5';
  }
})();

const kinds = new WeakMap<object, ClientKind>();

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== 'Object' ? `an instance of ${name}` : 'a plain object';
}

/**
 * Whether `client` is an ioredis Redis or Cluster (of any copy of ioredis
 * that speaks RESP2), and which.
 *
 * @throws {@link InvalidOptionsError} saying what is missing or which versions differ.
 */
export function clientKind(client: unknown): ClientKind {
  if (typeof client === 'object' && client !== null) {
    const known = kinds.get(client);
    if (known) return known;
  }
  let kind: ClientKind;
  if (client instanceof Cluster) kind = 'cluster';
  else if (client instanceof Redis) kind = 'redis';
  else kind = duckKind(client);
  kinds.set(client as object, kind);
  return kind;
}

function duckKind(client: unknown): ClientKind {
  const c = client as Record<string, unknown> | null;
  const missing = typeof c === 'object' && c !== null ? METHODS.filter((m) => typeof c[m] !== 'function') : [...METHODS];
  const isCluster = c?.isCluster;
  if (missing.length > 0 || typeof isCluster !== 'boolean' || typeof c?.status !== 'string' || typeof c?.options !== 'object') {
    throw new InvalidOptionsError(
      `RedisConnector \`client\` must be an ioredis Redis or Cluster client (ioredis ${IOREDIS_VERSION} or another 5.x copy), got ${describe(client)}` +
        (missing.length > 0 && missing.length < METHODS.length ? ` without ${missing.join(', ')}` : ''),
    );
  }
  const options = c.options as { protocol?: unknown; redisOptions?: { protocol?: unknown } };
  const protocol = isCluster ? (options.redisOptions?.protocol ?? options.protocol) : options.protocol;
  if (protocol !== undefined && protocol !== 2) {
    throw new InvalidOptionsError(
      `RedisConnector \`client\` comes from another ioredis than proxystore-redis's (ioredis ${IOREDIS_VERSION}) and speaks RESP${String(protocol)} ` +
        `(ioredis 6's default), whose replies this library does not decode: create it with { protocol: 2 }` +
        `${isCluster ? ' in redisOptions' : ''}, or use ioredis ^5`,
    );
  }
  return isCluster ? 'cluster' : 'redis';
}
