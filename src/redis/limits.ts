/**
 * The largest value one Redis accepts: its `proto-max-bulk-len`. A command
 * with a larger argument makes Redis reply "Protocol error: invalid bulk
 * length" and drop the connection, failing every other command in flight on
 * it; checking first turns that into one clear error and sends nothing.
 *
 * The limit is learned with one `CONFIG GET` per connection, sent when the
 * connection becomes ready (never per call). CONFIG is often forbidden (ACL
 * users, managed Redis); then Redis's default of 512 MB is assumed. Values of
 * at most 1 MiB, the smallest limit Redis allows, never wait for the answer.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import { RedisOperationError } from '../errors.js';

/** The smallest `proto-max-bulk-len` Redis accepts: a value this large always fits. */
export const MIN_BULK_LIMIT = 1024 * 1024;
/** Redis's default `proto-max-bulk-len`, assumed when CONFIG GET is refused. */
export const DEFAULT_BULK_LIMIT = 512 * 1024 * 1024;

type Client = Redis | Cluster;

async function learn(client: Client): Promise<number> {
  try {
    const reply: unknown = await client.config('GET', 'proto-max-bulk-len');
    const value = Array.isArray(reply) ? Number(String(reply[1])) : NaN;
    return Number.isFinite(value) && value >= MIN_BULK_LIMIT ? Math.min(value, Number.MAX_SAFE_INTEGER) : DEFAULT_BULK_LIMIT;
  } catch {
    return DEFAULT_BULK_LIMIT;
  }
}

/** The limit of one client, relearned on each new connection. */
class BulkLimit {
  private limit: Promise<number> | undefined;

  constructor(private readonly client: Client) {
    client.on('ready', () => void this.get());
    client.on('close', () => {
      this.limit = undefined;
    });
    if (client.status === 'ready') void this.get();
  }

  get(): Promise<number> {
    return (this.limit ??= learn(this.client));
  }
}

// One tracker (and one pair of listeners) per client, however many connectors share it.
const trackers = new WeakMap<Client, BulkLimit>();

/** Start tracking a client's limit (idempotent). */
export function trackBulkLimit(client: Client): void {
  if (!trackers.has(client)) trackers.set(client, new BulkLimit(client));
}

/** The client's `proto-max-bulk-len` in bytes. */
export function bulkLimit(client: Client): Promise<number> {
  trackBulkLimit(client);
  return (trackers.get(client) as BulkLimit).get();
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
