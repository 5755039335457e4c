/**
 * A Redis Cluster failover (issue 12, point 4): on a 3-master + 3-replica cluster this file
 * starts itself (cluster-node-timeout 2 s), a master is SIGKILLed while the library works on
 * every shard. With the connector's defaults (ioredis redirections sized to the 10 s command
 * timeout, the library's own resends), calls on the failing shard wait for the promotion and
 * succeed, or fail with a typed error; no raw MOVED/TRYAGAIN/CLUSTERDOWN reaches the caller and
 * nothing is left without a TTL. Also: the connector's Cluster defaults, and the warning about
 * a leaseTtl shorter than a failover.
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import {
  ClusterReconfiguringError,
  ContextLifetime,
  ProxyStoreError,
  RedisConnector,
  RedisOperationError,
  Store,
  borrow,
  drop,
  fromRef,
  release,
  resolve,
  toRef,
} from '../../src/index.js';
import { clusterDefaults } from '../../src/redis/connector.js';
import { startRedisCluster, type ManagedRedisCluster } from '../../scripts/local-redis.js';
import { afterAll, beforeAll, deleteNamespaceKeys, describe, expect, findLeakedKeys, onTestFinished, test } from '../harness/fixtures.js';

let cluster: ManagedRedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function storeFor(namespace: string, options: { leaseTtl?: number } = {}): Store {
  const store = new Store(`failover-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace }), { register: true, ...options });
  onTestFinished(async () => {
    await store.close();
  });
  return store;
}

/** Redis or ioredis text that must never be a whole error message the caller sees. */
const RAW = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|Too many Cluster redirections|All keys in the pipeline|Connection is closed|READONLY)/;

interface Call {
  op: string;
  start: number;
  end: number;
  error?: unknown;
}

describe('a master killed under load', () => {
  test('calls on its shard wait for the promotion and succeed, or fail typed; nothing raw, nothing left without a TTL', async ({ namespace }) => {
    const store = storeFor(namespace, { leaseTtl: 10 });
    const calls: Call[] = [];
    /** Store keys written without a TTL that the test must evict at the end. */
    const toEvict = new Set<string>();
    let stop = false;
    const run = async (op: string, body: () => Promise<void>) => {
      const call: Call = { op, start: Date.now(), end: 0 };
      try {
        await body();
      } catch (err) {
        call.error = err;
        for (const k of (err as RedisOperationError).writtenKeys ?? []) toEvict.add(k);
      }
      call.end = Date.now();
      calls.push(call);
    };
    const loops = [
      async () => {
        while (!stop) {
          await run('put/get', async () => {
            const key = await store.put({ at: Date.now() });
            toEvict.add(key);
            await store.get(key);
          });
        }
      },
      async () => {
        while (!stop) {
          await run('putBatch/getBatch', async () => {
            const keys = await store.putBatch(Array.from({ length: 30 }, (_, i) => i));
            for (const k of keys) toEvict.add(k);
            await store.connector.getBatch(keys);
          });
        }
      },
      async () => {
        while (!stop) {
          await run('consume', async () => {
            const ref = toRef(await store.proxy({ once: true }, { evict: true }));
            toEvict.add(ref.key);
            await resolve(fromRef(ref));
            toEvict.delete(ref.key);
          });
        }
      },
      async () => {
        while (!stop) {
          await run('ownership', async () => {
            const owned = await store.ownedProxy({ n: 1 });
            const shared = await borrow(owned);
            await release(shared);
            await drop(owned);
          });
        }
      },
      async () => {
        while (!stop) {
          await run('lifetime', async () => {
            const lifetime = new ContextLifetime(store);
            try {
              await store.putBatch([1, 2, 3], { lifetime });
              const plain = await store.put('foreign');
              toEvict.add(plain);
              await lifetime.addKey(plain);
            } finally {
              await lifetime.close();
            }
          });
        }
      },
    ];
    const running = loops.map((loop) => loop());
    await new Promise((r) => setTimeout(r, 1000));
    const report = await cluster.killMaster(0);
    const promotedAt = report.startedAt + (report.promotedAfterMs ?? 0);
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await Promise.all(running);

    const failed = calls.filter((c) => c.error !== undefined);
    for (const c of failed) {
      expect(c.error, `${c.op}: ${String(c.error)}`).toBeInstanceOf(ProxyStoreError);
      const message = (c.error as Error).message.replace(/^Redis [\w() ]+ failed( \([^)]*\))?: /, '');
      expect(message, c.op).not.toMatch(RAW);
      // A reconfiguration is named as one.
      if (/MOVED|ASK|TRYAGAIN|CLUSTERDOWN|redirections/.test((c.error as Error).message)) expect(c.error, c.op).toBeInstanceOf(ClusterReconfiguringError);
    }
    // Calls made before the promotion that waited it out and succeeded: the defaults fit a failover.
    const waited = calls.filter((c) => c.error === undefined && c.start < report.startedAt + 500 && c.end > promotedAt);
    expect(waited.length, `failed: ${failed.map((c) => `${c.op}: ${String(c.error)}`).join('\n')}`).toBeGreaterThan(0);
    // Every workload goes on after the failover.
    for (const op of ['put/get', 'putBatch/getBatch', 'consume', 'ownership', 'lifetime']) {
      expect(calls.some((c) => c.op === op && c.start > promotedAt && c.error === undefined), op).toBe(true);
    }

    for (const key of toEvict) await store.evict(key);
    // A fresh client: the old one still knows the killed master.
    const check = new Cluster((await cluster.shards()).map((s) => ({ host: s.master.host, port: s.master.port })));
    try {
      const leaked = await findLeakedKeys(check, namespace);
      await deleteNamespaceKeys(check, namespace);
      expect(leaked).toEqual([]);
    } finally {
      await check.quit();
    }
    await cluster.restartNode();
  }, 90_000);
});

describe('defaults and warnings', () => {
  test("a connector's Cluster follows redirections for most of its command timeout, giving up before it; clusterOptions override", async ({ namespace }) => {
    const made = new RedisConnector({ nodes: cluster.nodes, namespace, commandTimeoutMs: 8000 });
    const mine = new RedisConnector({ nodes: cluster.nodes, namespace, clusterOptions: { maxRedirections: 5, retryDelayOnTryAgain: 7 } });
    try {
      const options = (made.client as Cluster).options;
      expect(options).toMatchObject(clusterDefaults(8000));
      expect(options.maxRedirections).toBe(32);
      // ioredis gives up before the command timeout, whatever it follows (so the library's own
      // retry sees the cluster's answer), after following it for a good part of the timeout.
      const longest = Math.max(options.retryDelayOnFailover ?? 0, options.retryDelayOnClusterDown ?? 0, options.retryDelayOnTryAgain ?? 0);
      expect((options.maxRedirections ?? 0) * longest).toBeLessThan(8000);
      expect((options.maxRedirections ?? 0) * longest).toBeGreaterThanOrEqual(4000);
      expect((mine.client as Cluster).options).toMatchObject({ maxRedirections: 5, retryDelayOnTryAgain: 7, retryDelayOnFailover: 200 });
    } finally {
      await made.close();
      await mine.close();
    }
  });

  test('a leaseTtl shorter than a failover warns once per store; a long enough one does not', async ({ namespace }) => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as { code?: string }).code === 'PROXYSTORE_LEASE_TTL_FAILOVER') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const short = storeFor(`${namespace}-a`, { leaseTtl: 2 });
      const long = storeFor(`${namespace}-b`, { leaseTtl: 10 });
      for (let i = 0; i < 3; i++) {
        await short.exists('x');
        await long.exists('x');
      }
      await new Promise((r) => setImmediate(r));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toMatch(new RegExp(`Store failover-${namespace}-a: leaseTtl 2 s is shorter than a failover of this Redis Cluster may take \\(about 5 s, with cluster-node-timeout 2000 ms\\)`));
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('a master frozen for less than the node timeout', () => {
  test('a get on its shard fails ClusterReconfiguringError at the command timeout, as every single-key call there does; after the freeze it reads the value', async ({ namespace }) => {
    const store = new Store(`failover-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace, commandTimeoutMs: 800 }), { cacheSize: 0 });
    onTestFinished(async () => {
      await store.close();
    });
    const key = await store.put({ small: true }, { ttl: 60 });
    const slot = calculateSlot(store.connector.dataKey(key));
    const shards = await cluster.shards();
    const i = shards.findIndex((s) => s.slots.some(([a, b]) => slot >= a && slot <= b));
    expect(i).toBeGreaterThanOrEqual(0);
    // 1.5 s frozen against a 2 s cluster-node-timeout: no failover, just a master that does not answer.
    const freezing = cluster.freezeMaster(i, 1500);
    await new Promise((r) => setTimeout(r, 100));
    const err = await store.get(key).then(
      () => undefined,
      (e: unknown) => e,
    );
    await freezing;
    expect(err, String(err)).toBeInstanceOf(ClusterReconfiguringError);
    expect((err as ClusterReconfiguringError).message).toMatch(/GET/);
    expect(await store.get(key)).toEqual({ small: true });
    await store.evict(key);
  });
});
