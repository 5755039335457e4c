/**
 * The command line and objects with rules (single and cluster projects):
 * `inspect KEY` shows the reads left of a reads: n object and its ttl, and a
 * spent one's tombstone says it was read n of n times; `inspect` counts the
 * objects that expire by their ttl apart from the orphans; `gc` never evicts
 * an object that has a ttl (it goes by itself), and evicts an orphan with a
 * reads budget together with its rules record.
 */
import { LeaseLifetime, fromRef, getKey, resolve, toRef } from '../../src/index.js';
import type { GcReport } from '../../src/cli/gc.js';
import type { InspectReport, KeyReport } from '../../src/cli/inspect.js';
import { describe, expect, namespaceKeys, test } from '../harness/store-fixture.js';
import { cli, cliJson, targetArgs } from './util.js';

describe('inspect and gc with rules', () => {
  test('inspect KEY shows the reads left of how many, and the ttl', async ({ store, target, namespace }) => {
    const p = await store.proxy({ x: 1 }, { reads: 3, ttl: 600 });
    await resolve(fromRef(toRef(p)));
    const r = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', getKey(p)]);
    expect(r.object).toMatchObject({ status: 'expiring', reads: { left: 2, of: 3 } });
    expect(r.object?.data.ttlMs).toBeGreaterThan(500_000);
    const text = await cli(['inspect', '-n', namespace, ...targetArgs(target), '--', getKey(p)]);
    expect(text.stdout).toMatch(/\n {2}status +held by its own ttl: it goes by itself \(gc leaves it\)\n/);
    expect(text.stdout).toMatch(/\n {2}reads +2 left of 3 /);
    expect(text.stdout).toMatch(/\n {2}data +string, .*TTL (9|10)m/);
    await store.evict(getKey(p));
  });

  test('a spent object\'s tombstone says it was read n of n times; a lifetime counts its members with their own ttl or reads', async ({
    store,
    target,
    namespace,
  }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const p = await store.proxy('twice', { reads: 2, lifetime });
    await store.put('own end', { ttl: 60, lifetime });
    await store.put('plain member', { lifetime });
    for (let i = 0; i < 2; i++) await resolve(fromRef(toRef(p)));
    const r = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', getKey(p)]);
    expect(r.object).toMatchObject({ status: 'consumed', reads: null, tombstone: { reads: 2, consumer: { pid: process.pid } } });
    const text = await cli(['inspect', '-n', namespace, ...targetArgs(target), '--', getKey(p)]);
    expect(text.stdout).toMatch(/\n {2}consumed +by pid \d+ .*: read 2 of 2 times, the last \(tombstone expires/);
    const lt = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', lifetime.id]);
    expect(lt.lifetime).toMatchObject({ members: 2, membersWithRules: 1 });
    await lifetime.close();
  });

  test('gc leaves objects with a ttl alone and evicts an orphan with a budget together with its rules record', async ({
    store,
    redis,
    target,
    namespace,
  }) => {
    const expiring = [await store.put('ttl', { ttl: 600 }), await store.put('ttl and reads', { ttl: 600, reads: 2 })];
    const orphan = await store.put('budget, no ttl', { reads: 2 });
    const summary = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(summary).toMatchObject({ objects: 3, expiring: 2, withReads: 2, orphans: { count: 1 } });
    expect(summary.orphans.items.map((o) => o.key)).toEqual([orphan]);

    const run = await cliJson<GcReport>(['gc', '--yes', '-n', namespace, ...targetArgs(target)]);
    expect(run.items.map((i) => [i.key, i.action])).toEqual([[orphan, 'evicted']]);
    // Its data and rules record are gone (gc's own record of the eviction, `done`, expires by itself).
    const left = await namespaceKeys(redis, namespace);
    expect(left.filter((k) => k.includes(orphan) && !k.includes(':done:'))).toEqual([]);
    for (const key of expiring) expect(await store.exists(key)).toBe(true);
    await Promise.all(expiring.map((k) => store.evict(k)));
  });
});
