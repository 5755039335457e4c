/**
 * `proxystore-redis gc`, run as a real process from source against the run's
 * Redis (single and cluster projects): the dry run lists exactly the orphans
 * and changes nothing; --yes evicts exactly the orphans; --older-than spares
 * objects used recently.
 */
import type { Redis } from 'ioredis';
import { getKey, resolve } from '../../src/index.js';
import type { GcReport } from '../../src/cli/gc.js';
import type { InspectReport } from '../../src/cli/inspect.js';
import { describe, expect, namespaceKeys, test } from '../harness/store-fixture.js';
import { cli, cliJson, fillNamespace, snapshot, targetArgs } from './util.js';

/** Make a key look unused for `seconds` (RESTORE ... IDLETIME), keeping its value and TTL. */
async function makeIdle(redis: Redis, redisKey: string, seconds: number): Promise<void> {
  const dump = await redis.dumpBuffer(redisKey);
  const ttl = await redis.pttl(redisKey);
  await redis.restore(redisKey, Math.max(0, ttl), dump, 'REPLACE', 'IDLETIME', seconds);
}

describe('gc', () => {
  test.override({ allowLeftovers: true });

  test('the default is a dry run: it lists exactly the orphans and changes nothing', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: target.kind === 'single' });
    const old = store.connector.dataKey(s.orphans[0] as string);
    await makeIdle(redis, old, 7200);
    const before = await snapshot(redis, await namespaceKeys(redis, namespace));

    const run = await cli(['gc', '-n', namespace, ...targetArgs(target)]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    const listed = lines.filter((l) => l.startsWith('would evict ')).map((l) => l.split(/\s+/)[2]);
    expect(listed.sort()).toEqual(s.orphans);
    expect(lines.at(-1)).toBe(
      `Dry run: ${s.orphans.length} orphans of ${s.orphans.length + (s.foreignMember ? 8 : 7)} objects in namespace ${namespace} would be evicted. Run again with --yes to evict them.`,
    );
    expect(lines).toHaveLength(s.orphans.length + 1);

    const explicit = await cli(['gc', '--dry-run', '-n', namespace, ...targetArgs(target)]);
    expect(explicit.stdout.split('\n').filter((l) => l.startsWith('would evict ')).length).toBe(s.orphans.length);

    expect(await snapshot(redis, await namespaceKeys(redis, namespace))).toEqual(before);
    // Looking is not using: the dry runs left the object's idle time alone.
    expect(await redis.object('IDLETIME', old)).toBeGreaterThanOrEqual(7200);
  });

  test('--yes evicts exactly the orphans and nothing else', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: target.kind === 'single' });
    const before = await namespaceKeys(redis, namespace);
    const orphanKeys = s.orphans.map((k) => store.connector.dataKey(k));

    const report = await cliJson<GcReport>(['gc', '--yes', '-n', namespace, ...targetArgs(target)]);
    expect(report).toMatchObject({ version: 1, command: 'gc', namespace, dryRun: false, olderThanSeconds: null, cluster: target.kind === 'cluster' });
    expect(report.items.map((i) => i.key).sort()).toEqual(s.orphans);
    for (const item of report.items) expect(item).toMatchObject({ action: 'evicted', reason: null, ttlMs: null, idleSeconds: expect.any(Number) });
    expect(report.summary).toEqual({
      objects: s.orphans.length + (s.foreignMember ? 8 : 7),
      orphans: s.orphans.length,
      tooRecent: 0,
      wouldEvict: 0,
      evicted: s.orphans.length,
      kept: 0,
      staging: { found: 0, stale: 0, evicted: 0 },
    });

    // Each eviction leaves a short-lived record of its call (for a resend), and nothing else changes.
    const left = await namespaceKeys(redis, namespace);
    const markers = left.filter((k) => /\}:done:/.test(k));
    expect(markers.sort()).toEqual(s.orphans.map((k) => store.connector.keys.object('done', k)).sort());
    for (const marker of markers) expect(await redis.pttl(marker)).toBeGreaterThan(0);
    expect(left.filter((k) => !markers.includes(k))).toEqual(before.filter((k) => !orphanKeys.includes(k)));
    // What lifetimes and owners hold is intact.
    for (const key of [...s.contextMembers, ...s.leaseMembers, ...(s.foreignMember ? [s.foreignMember] : [])]) {
      expect(await store.exists(key), key).toBe(true);
    }
    expect(await resolve(s.shared.borrow)).toEqual([1, 2, 3]);
    expect(await store.exists(getKey(s.mutable.owner))).toBe(true);
    for (const key of s.unrecognized) expect(await redis.exists(key), key).toBe(1);

    const again = await cli(['gc', '--force', '-n', namespace, ...targetArgs(target)]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`Evicted 0 orphans of ${s.foreignMember ? 8 : 7} objects in namespace ${namespace}.\n`);
    const after = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(after.orphans.count).toBe(0);
    expect(after.lifetimes.count).toBe(3);
    expect(after.owned.count).toBe(2);
    expect(after.tombstones.count).toBe(1);
  });

  test('--older-than spares objects used more recently than that', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: false });
    const [old, ...fresh] = s.orphans as [string, ...string[]];
    await makeIdle(redis, store.connector.dataKey(old), 7200);

    const dry = await cliJson<GcReport>(['gc', '--older-than', '3600', '-n', namespace, ...targetArgs(target)]);
    expect(dry.olderThanSeconds).toBe(3600);
    expect(dry.items).toEqual([{ kind: 'object', key: old, ttlMs: null, idleSeconds: expect.any(Number), action: 'would-evict', reason: null }]);
    expect(dry.items[0]?.idleSeconds).toBeGreaterThanOrEqual(7200);
    expect(dry.summary).toMatchObject({ orphans: s.orphans.length, tooRecent: fresh.length, wouldEvict: 1, evicted: 0 });

    const run = await cli(['gc', '--yes', '--older-than', '3600', '-n', namespace, ...targetArgs(target)]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^evicted ${old} +\\(idle 2h 0m, TTL none\\)\n`));
    expect(run.stdout).toContain(`${fresh.length} orphans used within the last 1h 0m left alone (--older-than).`);
    expect(await store.exists(old)).toBe(false);
    for (const key of fresh) expect(await store.exists(key)).toBe(true);
  });
});
