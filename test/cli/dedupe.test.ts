/**
 * The command line and deduped objects (dedupe: true; single and cluster
 * projects): `inspect` counts them, `inspect KEY` shows their references
 * (puts without an end, with a ttl, lifetimes) and a lifetime's deduped
 * members; `gc` never evicts a deduped object that has references (its
 * holders evict it), and evicts one whose references are gone (its data
 * left behind by hand) as any orphan.
 */
import { ContextLifetime } from '../../src/index.js';
import type { GcReport } from '../../src/cli/gc.js';
import type { InspectReport, KeyReport } from '../../src/cli/inspect.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { cli, cliJson, targetArgs } from './util.js';

describe('inspect and gc with deduped objects', () => {
  // Seven runs of the command line, each a process of its own: more than the default 30 s on a loaded machine.
  test('inspect counts deduped objects and shows their references; a lifetime shows its deduped members', { timeout: 120_000 }, async ({ store, target, namespace }) => {
    const lifetime = new ContextLifetime(store);
    const key = await store.put({ weights: [1, 2, 3] }, { dedupe: true });
    await store.put({ weights: [1, 2, 3] }, { dedupe: true });
    await store.put({ weights: [1, 2, 3] }, { dedupe: true, ttl: 600 });
    await store.put({ weights: [1, 2, 3] }, { dedupe: true, lifetime });
    const summary = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(summary).toMatchObject({ objects: 1, deduped: 1, orphans: { count: 0 } });
    const text = await cli(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(text.stdout).toContain('1 deduped (held by references)');

    const r = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', key]);
    expect(r.object).toMatchObject({
      status: 'referenced',
      references: { count: 4, withoutEnd: 2, withTtl: 1, lifetimes: [lifetime.id], latestEndMs: null },
    });
    const detail = await cli(['inspect', '-n', namespace, ...targetArgs(target), '--', key]);
    expect(detail.stdout).toMatch(/\n {2}status +deduped: held by its references/);
    expect(detail.stdout).toMatch(/\n {2}references +4: 2 puts without an end, 1 with a ttl, 1 lifetime \(\S+\); no end while/);
    const lt = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', lifetime.id]);
    expect(lt.lifetime).toMatchObject({ members: 0, dedupedMembers: 1 });
    const ltText = await cli(['inspect', '-n', namespace, ...targetArgs(target), '--', lifetime.id]);
    expect(ltText.stdout).toMatch(/members +0 own, 0 foreign, 1 deduped/);

    await lifetime.close();
    await store.evict(key);
    await store.evict(key);
    // Held by the ttl reference alone: it expires by itself.
    const after = await cliJson<KeyReport>(['inspect', '-n', namespace, ...targetArgs(target), '--', key]);
    expect(after.object?.references).toMatchObject({ count: 1, withoutEnd: 0, withTtl: 1 });
    expect(after.object?.data.ttlMs).toBeGreaterThan(500_000);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('gc leaves deduped objects with references alone, and evicts deduped data whose references are gone', async ({
    store,
    redis,
    target,
    namespace,
  }) => {
    const held = await store.put('held by a put', { dedupe: true });
    const broken = await store.put('references lost', { dedupe: true });
    // By hand: the references of `broken` are gone, its data stays (no TTL): an orphan.
    await redis.del(store.connector.keys.object('refs', broken));
    const run = await cliJson<GcReport>(['gc', '--yes', '-n', namespace, ...targetArgs(target)]);
    expect(run.items.map((i) => [i.key, i.action])).toEqual([[broken, 'evicted']]);
    expect(await store.exists(broken)).toBe(false);
    expect(await store.get(held)).toBe('held by a put');
    await store.evict(held);
    expect(await store.exists(held)).toBe(false);
  });
});
