/**
 * The command line and owned members of lifetimes (docs/lifetimes.md,
 * "Owned objects in lifetimes"), run as a real process against the run's
 * Redis (single and cluster projects): `inspect` shows the lifetime that
 * bounds an owned object (its id, until when, or that it ended it), in the
 * namespace's table and in detail; `gc` leaves owned members alone, also
 * one whose lifetime ended while it is borrowed, and the record markers
 * that tell an ended owner why.
 */
import { ContextLifetime, LeaseLifetime, borrow, getKey, release } from '../../src/index.js';
import type { GcReport } from '../../src/cli/gc.js';
import type { InspectReport, KeyReport } from '../../src/cli/inspect.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { cli, cliJson, targetArgs } from './util.js';

describe('inspect and gc with owned members of lifetimes', () => {
  test('inspect shows the lifetime of an owned object; gc evicts none of them', { timeout: 180_000 }, async ({ store, target, namespace }) => {
    const base = ['-n', namespace, ...targetArgs(target)];
    const lease = new LeaseLifetime(store, { expiry: 600, name: 'lease' });
    const leased = await store.ownedProxy({ in: 'lease' }, { lifetime: lease });
    const context = new ContextLifetime(store);
    const closed = await store.ownedProxy({ in: 'context' });
    await context.addProxy(closed);
    const shared = await borrow(closed);
    await context.close();
    const unbound = await store.ownedProxy({ in: 'nothing' });

    const r = await cliJson<InspectReport>(['inspect', ...base]);
    const owned = new Map(r.owned.items.map((o) => [o.key, o]));
    expect(owned.get(getKey(leased))?.lifetime).toMatchObject({ id: lease.id, ended: false, untilLeftMs: expect.any(Number) });
    expect(owned.get(getKey(leased))?.lifetime?.untilLeftMs).toBeGreaterThan(500_000);
    expect(owned.get(getKey(closed))).toMatchObject({ dataPresent: true, ownerPresent: false, sharedBorrows: 1, lifetime: { id: context.id, ended: true } });
    expect(owned.get(getKey(unbound))?.lifetime).toBeNull();

    const table = await cli(['inspect', ...base]);
    expect(table.code).toBe(0);
    const rowOf = (key: string) => table.stdout.split('\n').find((l) => l.trim().startsWith(`${key} `)) ?? '';
    expect(rowOf(getKey(leased))).toMatch(new RegExp(`present .*${lease.id}\\s*$`));
    expect(rowOf(getKey(closed))).toMatch(new RegExp(`ended .*${context.id} \\(ended\\)\\s*$`));

    const detail = await cliJson<KeyReport>(['inspect', ...base, '--', getKey(closed)]);
    expect(detail.object).toMatchObject({ status: 'owned', ownership: { lifetime: { id: context.id, ended: true } } });
    const text = await cli(['inspect', ...base, '--', getKey(leased)]);
    expect(text.stdout).toMatch(new RegExp(`\\n {2}bound by +lifetime ${lease.id}, until [^\\n]+ from now\\n`));
    const endedText = await cli(['inspect', ...base, '--', getKey(closed)]);
    expect(endedText.stdout).toMatch(/\n {2}owner +ended by its lifetime \(the object goes when its last borrow ends\)\n/);
    expect(endedText.stdout).toMatch(new RegExp(`\\n {2}bound by +lifetime ${context.id}, ended [^\\n]+ ago\\n`));

    const gc = await cliJson<GcReport>(['gc', '--yes', ...base]);
    expect(gc.items).toEqual([]);
    for (const key of [leased, closed, unbound].map(getKey)) expect(await store.exists(key)).toBe(true);

    // The last borrow's release evicts the ended one; its record stays a while as a marker, which gc leaves too.
    await release(shared);
    expect(await store.exists(getKey(closed))).toBe(false);
    expect((await cliJson<GcReport>(['gc', '--yes', ...base])).items).toEqual([]);
    const marker = await cliJson<KeyReport>(['inspect', ...base, '--', getKey(closed)]);
    expect(marker.object).toMatchObject({ status: 'missing', data: { present: false }, ownership: { lifetime: { id: context.id, ended: true } } });
    await lease.close();
    expect(await store.exists(getKey(leased))).toBe(false);
  });
});
