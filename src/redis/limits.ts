/**
 * What the library needs to know of the server, learned with one
 * `CONFIG GET` per connection, sent when the connection becomes ready (never
 * per call):
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

/** The settings of one client's server, relearned on each new connection. */
class ServerSettings {
  private limit: Promise<number> | undefined;
  private warned = false;

  constructor(
    private readonly client: Client,
    private readonly namespace: string,
  ) {
    client.on('ready', () => void this.get());
    client.on('close', () => {
      this.limit = undefined;
    });
    if (client.status === 'ready') void this.get();
  }

  get(): Promise<number> {
    return (this.limit ??= this.learn());
  }

  private async learn(): Promise<number> {
    let reply: unknown;
    try {
      reply = await this.client.config('GET', 'proto-max-bulk-len', 'maxmemory-policy');
    } catch {
      return DEFAULT_BULK_LIMIT;
    }
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

/** The client's `proto-max-bulk-len` in bytes. */
export function bulkLimit(client: Client): Promise<number> {
  trackServer(client, '?');
  return (trackers.get(client) as ServerSettings).get();
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
