/**
 * Running the command line from source (`node --import tsx src/cli.ts ...`,
 * no build needed) and filling a namespace with one of everything it reports.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import {
  ContextLifetime,
  LeaseLifetime,
  borrow,
  getKey,
  mutBorrow,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
  type Store,
} from '../../src/index.js';
import { callerFrame, describeConsumer } from '../../src/consumer.js';
import { randomId } from '../../src/keys.js';
import { runChild, type ChildResult } from '../harness/child.js';
import type { RedisTarget } from '../harness/target.js';

export interface CliRun extends ChildResult {
  /** Wall time of the whole run, process start included. */
  ms: number;
}

/**
 * Run the CLI with `args`. The environment's PROXYSTORE_REDIS_URL and
 * PROXYSTORE_REDIS_NAMESPACE are blanked (the CLI treats empty as unset)
 * unless `env` sets them.
 */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const started = Date.now();
  const result = await runChild('src/cli.ts', {
    args,
    env: { PROXYSTORE_REDIS_URL: '', PROXYSTORE_REDIS_NAMESPACE: '', ...env },
    timeoutMs: 60_000,
  });
  return { ...result, ms: Date.now() - started };
}

/** `--url URL` or `--cluster host:port,...` for the test's target. */
export function targetArgs(target: RedisTarget): string[] {
  return target.kind === 'single' ? ['--url', target.url] : ['--cluster', target.nodes.map((n) => `${n.host}:${n.port}`).join(',')];
}

/** Run the CLI and parse its stdout as JSON; fails with its stderr if it did not exit 0. */
export async function cliJson<T>(args: string[]): Promise<T> {
  // Options go before the command too; after it, a `--` may end the options.
  const run = await cli(['--json', ...args]);
  if (run.code !== 0) throw new Error(`CLI ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** One of everything `inspect` reports, and the orphans `gc` must find. */
export interface Scenario {
  context: ContextLifetime;
  contextMembers: string[];
  /** A plain put added to the context lifetime (a foreign member); single Redis only. */
  foreignMember: string | undefined;
  lease: LeaseLifetime;
  leaseMembers: string[];
  /** A closed ContextLifetime: its 'ended' marker. */
  ended: ContextLifetime;
  shared: { owner: OwnedProxy<number[]>; borrow: RefProxy<number[]> };
  mutable: { owner: OwnedProxy<{ n: number }>; borrow: RefMutProxy<{ n: number }> };
  /** Consumed by this process: its tombstone names this pid and host. */
  consumed: string;
  consumer: { pid: number; host: string };
  /** Objects that belong to nothing. */
  orphans: string[];
  /** Redis keys under `<ns>:{` that the library did not write. */
  unrecognized: string[];
}

/**
 * Fill the store's namespace. `foreign`: also add a plain put to the context
 * lifetime (a foreign member in another hash tag: single Redis only; the
 * library does not group foreign members by slot on a cluster yet).
 */
export async function fillNamespace(store: Store, redis: Redis, options: { foreign: boolean }): Promise<Scenario> {
  const ns = store.namespace;
  const context = await new ContextLifetime(store, { name: 'jobs' }).waitUntilReady();
  const contextMembers = [await store.put('a', { lifetime: context }), getKey(await store.proxy([1, 2], { lifetime: context }))];
  let foreignMember: string | undefined;
  if (options.foreign) {
    foreignMember = await store.put('added later');
    await context.addKey(foreignMember);
  }
  const lease = await new LeaseLifetime(store, { expiry: 600, name: 'lease' }).waitUntilReady();
  const leaseMembers = await store.putBatch(['x', 'y', 'z'], { lifetime: lease });
  const ended = await new ContextLifetime(store, { name: 'done' }).waitUntilReady();
  await store.put('gone with it', { lifetime: ended });
  await ended.close();

  const sharedOwner = await store.ownedProxy([1, 2, 3]);
  const sharedBorrow = await borrow(sharedOwner);
  const mutOwner = await store.ownedProxy({ n: 1 });
  const mutBorrowed = await mutBorrow(mutOwner);

  const ephemeral = await store.proxy({ once: true }, { evict: true });
  // Consumed here, as a consume whose reply was lost leaves it (a successful resolve releases its
  // grace copy at once): the tombstone names this process, and the grace copy stays.
  const consumeToken = randomId();
  await store.connector.scripts.run('consume', store.connector.consumeKeys(getKey(ephemeral), consumeToken), {
    token: consumeToken,
    consumer: describeConsumer(callerFrame()),
    ttlMs: Math.round(store.tombstoneTtl * 1000),
    graceMs: 30_000,
  });

  const orphans = [
    await store.put('plain put'),
    await store.put({ rows: [1, 2, 3] }),
    ...(await store.putBatch([1, 2])),
    getKey(await store.proxy(new Map([['plain', 'proxy']]))),
    await store.connector.put(Buffer.from('raw bytes through the connector')),
  ];
  const unrecognized = [`${ns}:{not-ours}:d:not-ours`, `${ns}:{junk}:stray`];
  await redis.hset(unrecognized[0] as string, 'field', 'a hash where an object would be');
  await redis.set(unrecognized[1] as string, 'x');

  return {
    context,
    contextMembers,
    foreignMember,
    lease,
    leaseMembers,
    ended,
    shared: { owner: sharedOwner, borrow: sharedBorrow },
    mutable: { owner: mutOwner, borrow: mutBorrowed },
    consumed: getKey(ephemeral),
    consumer: { pid: process.pid, host: hostname() },
    orphans: orphans.sort(),
    unrecognized,
  };
}

/** Every key of the namespace with its Redis type, sorted (on every master of a cluster). */
export async function snapshot(redis: Redis, keys: string[]): Promise<string[]> {
  const types = await Promise.all(keys.map((k) => redis.type(k)));
  return keys.map((k, i) => `${k} ${types[i]}`);
}
