/**
 * Chunked values (issue 16) across Redis Cluster master faults, now that chunk reads and staging
 * writes go over the connector's own raw connection (src/redis/raw.ts). On a 3-master +
 * 3-replica cluster this file starts itself (cluster-node-timeout 2 s), with a 1 KiB chunkSize
 * and values of 150-200 chunks, a master is SIGKILLed, SIGSTOPped, or failed over gracefully while
 * a `get`, a slow `getStream` and a slow `putStream` of chunked values on its slots are in flight.
 * Each call completes with the very bytes or rejects with a typed error, and settles (no hung
 * call); afterwards chunked put/get/getStream on those slots go raw again (to the new master),
 * nothing is left without a TTL and no staging hash has a TTL longer than its rule.
 */
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { ProxyStoreError, RedisConnector, Store } from '../../src/index.js';
import { STAGE_TTL_MS } from '../../src/chunks/format.js';
import { startRedisCluster, type FaultReport, type ManagedRedisCluster } from '../../scripts/local-redis.js';
import { afterAll, beforeAll, deleteNamespaceKeys, describe, expect, findLeakedKeys, namespaceKeys, onTestFinished, test } from '../harness/fixtures.js';
import { CHUNK, slowSource } from '../chunks/util.js';

/** A call that has not settled this long after the fault is hung. */
const SETTLE_BOUND_MS = 30_000;
/** Redis or ioredis text that must never be a whole error message the caller sees. */
const RAW = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|Too many Cluster redirections|All keys in the pipeline|Connection is closed|READONLY|LOADING)/;

let cluster: ManagedRedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh Cluster client on the current masters (the store's may still know a dead one). */
async function freshClient(): Promise<Cluster> {
  return new Cluster((await cluster.shards()).map((s) => ({ host: s.master.host, port: s.master.port })));
}

function storeFor(namespace: string, commandTimeoutMs?: number): Store {
  const connector = new RedisConnector({ nodes: cluster.nodes, namespace, ...(commandTimeoutMs ? { commandTimeoutMs } : {}) });
  const store = new Store(`chunks-faults-${namespace}`, connector, { chunkSize: CHUNK, cacheSize: 0 });
  onTestFinished(async () => {
    await store.close();
  });
  return store;
}

/** The index (by lowest slot, as the fault helpers number them) of the master serving `slot`. */
async function masterOf(slot: number): Promise<number> {
  const shards = await cluster.shards();
  const i = shards.findIndex((s) => s.slots.some(([a, b]) => slot >= a && slot <= b));
  if (i < 0) throw new Error(`no master serves slot ${slot}`);
  return i;
}

/** The ports of the master serving `slot` now. */
async function portOf(slot: number): Promise<number> {
  return (await cluster.shards())[await masterOf(slot)]!.master.port;
}

/** Read `getStream(key)` waiting `delayMs` after each part (a slow consumer). */
async function slowRead(store: Store, key: string, delayMs: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of store.getStream(key)) {
    parts.push(part as Buffer);
    if (delayMs > 0) await sleep(delayMs);
  }
  return Buffer.concat(parts);
}

interface Outcome {
  op: string;
  start: number;
  end: number;
  /** The bytes were the expected ones. */
  same?: boolean;
  /** What came back when not the expected bytes. */
  got?: string;
  error?: unknown;
  hung?: boolean;
}

/** Run `body`, comparing its bytes with `expected`; a call still running after the bound is hung. */
async function settle(op: string, expected: Buffer | undefined, body: () => Promise<Buffer | string>, outcomes: Outcome[]): Promise<Outcome> {
  const o: Outcome = { op, start: Date.now(), end: 0 };
  outcomes.push(o);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'hung'>((r) => {
    timer = setTimeout(() => r('hung'), SETTLE_BOUND_MS);
  });
  const work = body().then(
    (v) => {
      if (expected !== undefined) o.same = Buffer.isBuffer(v) && Buffer.compare(v, expected) === 0;
      if (o.same === false) o.got = Buffer.isBuffer(v) ? `${v.length} other bytes` : String(v);
      return v;
    },
    (err: unknown) => {
      o.error = err;
      return undefined;
    },
  );
  const first = await Promise.race([work, bound]);
  clearTimeout(timer);
  if (first === 'hung') o.hung = true;
  o.end = Date.now();
  return o;
}

/** Every call settled: the very bytes, or a typed error with no raw Redis text; none hung. */
function expectSettled(outcomes: Outcome[]): void {
  const text = outcomes.map((o) => `${o.op} ${o.end - o.start} ms: ${o.hung ? 'HUNG' : o.error ? `${(o.error as Error).constructor.name}: ${(o.error as Error).message}` : o.same === false ? `WRONG BYTES (${o.got})` : 'ok'}`).join('\n');
  for (const o of outcomes) {
    expect(o.hung, `${o.op} hung:\n${text}`).not.toBe(true);
    if (o.error !== undefined) {
      expect(o.error, `${o.op}: ${String(o.error)}\n${text}`).toBeInstanceOf(ProxyStoreError);
      const message = (o.error as Error).message.replace(/^Redis [\w() ]+ failed( \([^)]*\))?: /, '');
      expect(message, o.op).not.toMatch(RAW);
    } else if (o.same !== undefined) {
      expect(o.same, `${o.op} returned other bytes\n${text}`).toBe(true);
    }
  }
  // What happened, per op: counts of outcomes and the longest call.
  const summary = new Map<string, { n: number; longest: number; errors: string[] }>();
  for (const o of outcomes) {
    const row = summary.get(o.op) ?? { n: 0, longest: 0, errors: [] };
    row.n++;
    row.longest = Math.max(row.longest, o.end - o.start);
    if (o.error !== undefined) row.errors.push(`${(o.error as Error).constructor.name}: ${(o.error as Error).message.slice(0, 160)}`);
    summary.set(o.op, row);
  }
  for (const [op, row] of summary) console.log(`${op}: ${row.n} calls, longest ${row.longest} ms, ${row.errors.length} typed errors${row.errors.length ? `:\n  ${row.errors.join('\n  ')}` : ''}`);
}

/** Chunked values put until one lands on master `i`'s slots: its key and bytes. */
async function putOn(store: Store, i: number, chunks: number): Promise<{ key: string; value: Buffer }> {
  for (let n = 0; n < 60; n++) {
    const value = randomBytes(chunks * CHUNK + 7);
    const key = await store.put(value);
    if ((await masterOf(calculateSlot(store.connector.dataKey(key)))) === i) return { key, value };
    await store.evict(key);
  }
  throw new Error(`no key landed on master ${i} in 60 puts`);
}

/**
 * After the fault: chunked put, get and getStream on the victim's slots work and go raw again
 * (to the new master). The raw path may sit out a while after a refused connection (10 s), so
 * this tries again for up to {@link SETTLE_BOUND_MS}.
 */
async function expectRawAgain(store: Store, i: number, opened: number): Promise<void> {
  const deadline = Date.now() + SETTLE_BOUND_MS;
  let rawGrew = 0;
  for (;;) {
    const before = store.connector.raw.stats.raw;
    const { key, value } = await putOn(store, i, 50);
    expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
    expect(Buffer.compare(await slowRead(store, key, 0), value)).toBe(0);
    await store.evict(key);
    rawGrew = store.connector.raw.stats.raw - before;
    // put (51 chunks), get and getStream (51 each): all raw.
    if (rawGrew >= 3 * 51 || Date.now() > deadline) break;
    await sleep(1000);
  }
  expect(rawGrew, `raw chunk transfers after the fault (stats ${JSON.stringify(store.connector.raw.stats)})`).toBeGreaterThanOrEqual(3 * 51);
  expect(store.connector.raw.stats.opened, 'a link to the new master since the fault').toBeGreaterThan(opened);
}

/** Nothing without a TTL; no staging hash with a TTL over its rule. */
async function expectNoLeaks(namespace: string): Promise<void> {
  const check = await freshClient();
  try {
    const leaked = await findLeakedKeys(check, namespace);
    const stages = (await namespaceKeys(check, namespace)).filter((k) => k.includes(':stage:'));
    const ttls = await Promise.all(stages.map((k) => check.pttl(k)));
    await deleteNamespaceKeys(check, namespace);
    expect(leaked, 'keys without a TTL').toEqual([]);
    for (const t of ttls) {
      expect(t).toBeGreaterThan(0);
      expect(t).toBeLessThanOrEqual(STAGE_TTL_MS);
    }
  } finally {
    await check.quit();
  }
}

/**
 * The scenario of every case: a slow putStream (its staging hash names the victim master), and,
 * on the victim's slots, gets in a loop and slow getStreams in a loop; `fault(i)` is applied to
 * master i once the putStream has sent some chunks raw. Returns the outcomes and the fault.
 */
async function underFault(store: Store, namespace: string, want: number, fault: (i: number) => Promise<FaultReport>): Promise<{ outcomes: Outcome[]; report: FaultReport; victim: number; opened: number }> {
  const outcomes: Outcome[] = [];
  const check = await freshClient();
  let putDone: Promise<unknown> = Promise.resolve();
  let producer: { at: () => number } | undefined;
  const putValue = randomBytes(200 * CHUNK + 3);
  try {
    // A slow putStream whose staging hash is on master `want` (one elsewhere is abandoned: its
    // source fails, the store unlinks its staging hash).
    for (let attempt = 0; ; attempt++) {
      expect(attempt, 'a putStream staged on the wanted master').toBeLessThan(40);
      const source = slowSource(putValue, 20);
      const rawBefore = store.connector.raw.stats.raw;
      let putKey: string | undefined;
      const staging = store.putStream(source.stream).then((k) => (putKey = k));
      let stage: string | undefined;
      for (let n = 0; n < 300 && (stage === undefined || store.connector.raw.stats.raw - rawBefore < 5); n++) {
        await sleep(10);
        stage = (await namespaceKeys(check, namespace)).find((k) => k.includes(':stage:'));
      }
      expect(stage, 'the staging hash of the putStream').toBeDefined();
      if ((await masterOf(calculateSlot(stage as string))) !== want) {
        source.stream.destroy(new Error('abandoned'));
        await expect(staging).rejects.toThrow('abandoned');
        continue;
      }
      producer = source;
      putDone = settle('putStream', undefined, () => staging, outcomes).then(async (o) => {
        if (o.error === undefined && !o.hung && putKey !== undefined) {
          // Stored whole: read it back.
          o.same = Buffer.compare((await store.get<Buffer>(putKey)) as Buffer, putValue) === 0;
          await store.evict(putKey);
        }
      });
      break;
    }
  } finally {
    await check.quit();
  }
  const victim = want;
  const { key, value } = await putOn(store, victim, 150);
  let stop = false;
  const getLoop = (async () => {
    while (!stop) {
      await settle('get', value, async () => (await store.get<Buffer>(key)) as Buffer, outcomes);
      await sleep(10);
    }
  })();
  const streamLoop = (async () => {
    // 151 parts, 15 ms each: a read takes over 2 s, so one spans the fault.
    while (!stop) await settle('getStream', value, () => slowRead(store, key, 15), outcomes);
  })();
  await sleep(300);
  if (producer) expect(producer.at(), 'the producer is still writing when the fault lands').toBeLessThan(putValue.length);
  const opened = store.connector.raw.stats.opened;
  // The value read during the fault is on the replica before the fault (WAIT): a loss of it would
  // be replication lag (docs/durability.md), not what this file tests.
  {
    const sh = (await cluster.shards())[victim]!;
    const master = new Redis({ host: sh.master.host, port: sh.master.port });
    try {
      const t0 = Date.now();
      const acked = Number(await master.call('WAIT', '1', '20000'));
      console.log(`WAIT: ${acked} replica(s) acknowledged in ${Date.now() - t0} ms`);
      expect(acked, 'the replica has the value before the fault').toBeGreaterThanOrEqual(1);
    } finally {
      master.disconnect();
    }
  }
  const report = await fault(victim);
  await sleep(1000);
  stop = true;
  await Promise.all([getLoop, streamLoop, putDone]);
  // A get and a getStream were in flight during the fault (from its start until the cluster settled).
  for (const op of ['get', 'getStream']) {
    expect(
      outcomes.some((o) => o.op === op && o.start <= report.settledAt && o.end >= report.startedAt),
      `${op} in flight during the fault`,
    ).toBe(true);
  }
  expectSettled(outcomes);
  await store.evict(key).catch(() => undefined);
  return { outcomes, report, victim, opened };
}

describe('chunked values across master faults (raw chunk connection)', () => {
  test('a master SIGKILLed mid-transfer, its replica promoted: each call the very bytes or a typed error, none hung; then raw again on the new master, nothing leaked', async ({ namespace }) => {
    const store = storeFor(namespace);
    const { report, victim, opened } = await underFault(store, namespace, 0, (i) => cluster.killMaster(i));
    console.log(`kill: promoted after ${report.promotedAfterMs} ms, raw stats ${JSON.stringify(store.connector.raw.stats)}`);
    await expectRawAgain(store, victim, opened);
    await expectNoLeaks(namespace);
    await cluster.restartNode();
    await cluster.waitConverged();
  }, 180_000);

  test('a master SIGSTOPped mid-transfer for 6 s (its replica promoted meanwhile): no call hangs, each the very bytes or a typed error; then raw again', async ({ namespace }) => {
    const store = storeFor(namespace);
    const { report, victim, opened } = await underFault(store, namespace, 0, (i) => cluster.freezeMaster(i, 6000));
    console.log(`freeze: promoted after ${report.promotedAfterMs} ms, demoted ${report.demoted}, raw stats ${JSON.stringify(store.connector.raw.stats)}`);
    await expectRawAgain(store, victim, opened);
    await expectNoLeaks(namespace);
  }, 180_000);

  test('a master SIGSTOPped for 6 s under a 2 s command timeout: the raw link gives up with the command timeout, no call hangs; each the very bytes or a typed error; then raw again', async ({ namespace }) => {
    const store = storeFor(namespace, 2000);
    const { report, victim, opened } = await underFault(store, namespace, 0, (i) => cluster.freezeMaster(i, 6000));
    console.log(`freeze, 2 s command timeout: promoted after ${report.promotedAfterMs} ms, demoted ${report.demoted}, raw stats ${JSON.stringify(store.connector.raw.stats)}`);
    await expectRawAgain(store, victim, opened);
    await expectNoLeaks(namespace);
  }, 180_000);

  test('a graceful CLUSTER FAILOVER mid-getStream: the very bytes or a typed error; later transfers raw on the new master', async ({ namespace }) => {
    const store = storeFor(namespace);
    const oldPorts = new Set((await cluster.shards()).map((s) => s.master.port));
    const { report, victim, opened } = await underFault(store, namespace, 0, (i) => cluster.failover(i));
    console.log(`failover: promoted after ${report.promotedAfterMs} ms, raw stats ${JSON.stringify(store.connector.raw.stats)}`);
    expect(report.master && oldPorts.has(report.master.port)).toBe(false);
    await expectRawAgain(store, victim, opened);
    const later = await putOn(store, victim, 2);
    expect(await portOf(calculateSlot(store.connector.dataKey(later.key))), 'the victim slots are served by the promoted replica').toBe(report.master?.port);
    await store.evict(later.key);
    await expectNoLeaks(namespace);
  }, 180_000);
});
