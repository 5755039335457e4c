/**
 * The test API every suite imports instead of `vitest`'s own:
 *
 *   import { test, expect, describe } from './harness/fixtures.js';
 *   test('does a thing', async ({ redis, namespace, redisUrl }) => { ... });
 *
 * Fixtures
 * - `redisUrl`  the run's Redis (worker-scoped, from the global setup's `provide`).
 * - `namespace` a fresh `t-<8 hex>` per test; never contains `{` or `}` (the library's hash
 *               tags are built from it).
 * - `redis`     a raw ioredis client for assertions; closed after the test.
 * - leak check  (auto, every test) once the test and all its fixtures have finished (so after a
 *               `store` fixture has been closed), SCANs `<namespace>:*` and fails the test if any
 *               key has no TTL (PTTL -1), listing up to 20 of them. Keys with a TTL are allowed
 *               (tombstones and ended markers expire by design). Then it deletes every key of
 *               the namespace, pass or fail, so tests never see each other's data. A test that
 *               already failed is not failed a second time for its leftovers.
 *
 * Opting out of the leak check (the keys are still deleted afterwards): `allowLeftovers` is an
 * option fixture, overridden per suite with vitest 4's `test.override` (`test.scoped` is its
 * deprecated old name):
 *
 *   describe('leaves keys on purpose', () => {
 *     test.override({ allowLeftovers: true });
 *     test('...', async ({ redis }) => { ... });
 *   });
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { test as base, inject } from 'vitest';
import { rawClient, targetEnv } from './target.js';

export { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, onTestFailed, onTestFinished, vi } from 'vitest';

/** How many leaked keys a failure message lists. */
const MAX_LISTED = 20;
const SCAN_COUNT = 500;

type AnyRedis = Redis | Cluster;

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** The node clients to SCAN: every master of a Cluster, or the client itself. */
function scanTargets(redis: AnyRedis): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

async function scanKeys(node: Redis, namespace: string): Promise<string[]> {
  const match = `${escapeGlob(namespace)}:*`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return [...new Set(keys)]; // SCAN may return a key more than once
}

/**
 * The keys under `<namespace>:` that have no TTL (PTTL -1), sorted. Keys with a TTL, and keys
 * that vanish while we look, are not reported. Works on a single Redis and on a Cluster (it
 * scans every master).
 */
export async function findLeakedKeys(redis: AnyRedis, namespace: string): Promise<string[]> {
  const leaked: string[] = [];
  for (const node of scanTargets(redis)) {
    const keys = await scanKeys(node, namespace);
    if (keys.length === 0) continue;
    const pipe = node.pipeline();
    for (const key of keys) pipe.pttl(key);
    const replies = (await pipe.exec()) ?? [];
    keys.forEach((key, i) => {
      const [err, ttl] = replies[i] ?? [null, null];
      if (err) throw err;
      if (ttl === -1) leaked.push(key);
    });
  }
  return leaked.sort();
}

/** Every key under `<namespace>:`, with or without a TTL, sorted (every master of a Cluster). */
export async function namespaceKeys(redis: AnyRedis, namespace: string): Promise<string[]> {
  const all = await Promise.all(scanTargets(redis).map((node) => scanKeys(node, namespace)));
  // Not the connectors' generation markers (src/redis/generation.ts: one per Redis, with a TTL).
  return [...new Set(all.flat())].filter((k) => !k.startsWith(`${namespace}:generation:`)).sort();
}

/** Delete every key under `<namespace>:`; returns how many were deleted. */
export async function deleteNamespaceKeys(redis: AnyRedis, namespace: string): Promise<number> {
  let deleted = 0;
  for (const node of scanTargets(redis)) {
    const keys = await scanKeys(node, namespace);
    if (keys.length === 0) continue;
    // One UNLINK per key: a multi-key UNLINK fails across Cluster slots.
    const pipe = node.pipeline();
    for (const key of keys) pipe.unlink(key);
    for (const [err, n] of (await pipe.exec()) ?? []) {
      if (err) throw err;
      deleted += Number(n);
    }
  }
  return deleted;
}

/** A unique test namespace, `t-<8 hex>`. */
export function newNamespace(): string {
  return `t-${randomBytes(4).toString('hex')}`;
}

function leakMessage(namespace: string, leaked: string[]): string {
  const listed = leaked.slice(0, MAX_LISTED).map((k) => `  ${k}`).join('\n');
  const more = leaked.length > MAX_LISTED ? `\n  ... and ${leaked.length - MAX_LISTED} more` : '';
  return (
    `Leak check: the test left ${leaked.length} key(s) without a TTL in namespace "${namespace}":\n` +
    `${listed}${more}\n` +
    'If the test means to leave them, opt out with test.override({ allowLeftovers: true }).'
  );
}

export const test = base
  .extend('redisUrl', { scope: 'worker' }, () => inject('redisUrl'))
  .extend('target', { scope: 'worker' }, () => {
    const target = inject('redisTarget');
    // Child processes inherit this worker's environment: they reach the same target.
    Object.assign(process.env, targetEnv(target));
    return target;
  })
  // Its own connection, shared by the worker, so that whatever a test does to its `redis`
  // client (QUIT, SUBSCRIBE, MONITOR) cannot break the leak check.
  .extend('leakCheckRedis', { scope: 'worker' }, async ({ target }, { onCleanup }) => {
    const client = rawClient(target, { connectionName: 'proxystore-test-leak-check' });
    onCleanup(async () => {
      await client.quit();
    });
    return client;
  })
  .extend('allowLeftovers', false as boolean)
  .extend('namespace', () => newNamespace())
  .extend('redis', async ({ target }, { onCleanup }) => {
    const client = rawClient(target, { connectionName: 'proxystore-test-assert' });
    onCleanup(() => {
      client.disconnect();
    });
    return client;
  })
  // onTestFinished hooks run after every test-scoped fixture has been torn down (the store
  // is closed by then), and an error they throw fails the test; a throwing fixture teardown
  // would instead skip the teardown of the fixtures set up before it.
  .extend(
    'leakCheck',
    { auto: true },
    ({ namespace, allowLeftovers, leakCheckRedis, onTestFinished }) => {
      onTestFinished(async ({ task }) => {
        const leaked = await findLeakedKeys(leakCheckRedis, namespace);
        await deleteNamespaceKeys(leakCheckRedis, namespace);
        if (leaked.length > 0 && !allowLeftovers && task.result?.state !== 'fail') {
          throw new Error(leakMessage(namespace, leaked));
        }
      });
    },
  );

/** `it` is `test`, with the same fixtures and leak check. */
export const it = test;
