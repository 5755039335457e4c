/**
 * `proxystore-redis inspect`, run as a real process from source against the
 * run's Redis (single and cluster projects): one namespace with a context
 * lifetime (own and foreign members), a lease, an ended lifetime, an owned
 * object with a shared borrow, one with a mutable borrow, a consumed
 * ephemeral object, orphans, and keys the library did not write.
 */
import { getKey } from '../../src/index.js';
import type { InspectReport, KeyReport } from '../../src/cli/inspect.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { cli, cliJson, fillNamespace, targetArgs } from './util.js';

/** The whitespace-separated cells of the table row that starts with `first`. */
function row(text: string, first: string): string[] {
  const line = text.split('\n').find((l) => l.trim().startsWith(`${first} `));
  if (!line) throw new Error(`no row for ${first} in:\n${text}`);
  return line.trim().split(/\s{2,}/);
}

describe('inspect', () => {
  // The scenario leaves orphans and lifetimes on purpose.
  test.override({ allowLeftovers: true });

  test('--json lists every lifetime, owned object, tombstone and orphan with their state', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: target.kind === 'single' });
    const r = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target)]);

    expect(r).toMatchObject({ version: 1, command: 'inspect', namespace, cluster: target.kind === 'cluster', limit: 100 });
    const held = s.contextMembers.length + (s.foreignMember ? 1 : 0) + s.leaseMembers.length + 2;
    expect(r.objects).toBe(held + s.orphans.length);

    expect(r.lifetimes.count).toBe(3);
    const byId = new Map(r.lifetimes.items.map((l) => [l.id, l]));
    expect(byId.get(s.context.id)).toMatchObject({
      kind: 'context',
      name: 'jobs',
      state: 'open',
      members: 2,
      foreignMembers: s.foreignMember ? 1 : 0,
      timeLeftMs: null,
      expiresAtMs: null,
    });
    const lease = byId.get(s.lease.id);
    expect(lease).toMatchObject({ kind: 'lease', name: 'lease', state: 'open', members: 3, foreignMembers: 0 });
    expect(lease?.timeLeftMs).toBeGreaterThan(500_000);
    expect(lease?.timeLeftMs).toBeLessThanOrEqual(600_000);
    expect(byId.get(s.ended.id)).toMatchObject({ kind: 'context', name: 'done', state: 'ended', members: 0, timeLeftMs: null });
    expect(byId.get(s.ended.id)?.endedAtMs).toEqual(expect.any(Number));

    expect(r.owned.count).toBe(2);
    const owned = new Map(r.owned.items.map((o) => [o.key, o]));
    expect(owned.get(getKey(s.shared.owner))).toMatchObject({ dataPresent: true, ownerPresent: true, sharedBorrows: 1, mutableBorrow: false });
    expect(owned.get(getKey(s.mutable.owner))).toMatchObject({ dataPresent: true, ownerPresent: true, sharedBorrows: 0, mutableBorrow: true });
    for (const o of r.owned.items) {
      expect(o.leaseLeftMs).toBeGreaterThan(0);
      expect(o.handles.map((h) => h.role).sort()).toEqual(o.mutableBorrow ? ['mutable', 'owner'] : ['owner', 'shared']);
      // Tokens are capabilities: never in the output.
      expect(JSON.stringify(o)).not.toMatch(/token/i);
    }

    expect(r.tombstones).toMatchObject({ count: 1, items: [{ key: s.consumed, consumer: s.consumer, graceCopy: true }] });
    expect(r.tombstones.items[0]?.consumer.frame).toMatch(/util\.ts:\d+:\d+$/);
    expect(r.tombstones.items[0]?.ageMs).toBeGreaterThanOrEqual(0);

    expect(r.orphans.count).toBe(s.orphans.length);
    expect(r.orphans.items.map((o) => o.key)).toEqual(s.orphans);
    for (const o of r.orphans.items) {
      expect(o.ttlMs).toBeNull();
      expect(o.idleSeconds).toEqual(expect.any(Number));
    }
    expect(r.unrecognized).toEqual({ count: 2, sample: expect.arrayContaining(s.unrecognized) });
  });

  test('prints one table per section, with a row per lifetime, owned object, tombstone and orphan', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: target.kind === 'single' });
    const run = await cli(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;

    expect(out).toMatch(new RegExp(`^Namespace ${namespace} on .*: \\d+ objects, 3 lifetimes, 2 owned, 1 consumed, ${s.orphans.length} orphans\n`));
    expect(out).toContain('\nLifetimes (3)\n  ID ');
    expect(row(out, s.context.id)).toEqual([s.context.id, 'context', 'jobs', 'open', '2', s.foreignMember ? '1' : '0', '0', '-']);
    expect(row(out, s.lease.id).slice(0, 7)).toEqual([s.lease.id, 'lease', 'lease', 'open', '3', '0', '0']);
    expect(row(out, s.lease.id)[7]).toMatch(/^(9m \d+s|10m 0s)$/);
    expect(row(out, s.ended.id)).toEqual([s.ended.id, 'context', 'done', 'ended', '0', '0', '0', '-']);

    expect(out).toContain('\nOwned objects (2)\n  KEY ');
    expect(row(out, getKey(s.shared.owner))).toEqual([getKey(s.shared.owner), 'present', '1', 'no', expect.stringMatching(/s$/), 'present', '-']);
    expect(row(out, getKey(s.mutable.owner))).toEqual([getKey(s.mutable.owner), 'present', '0', 'yes', expect.stringMatching(/s$/), 'present', '-']);

    expect(out).toContain('\nConsumed objects (1)\n  KEY ');
    const tomb = row(out, s.consumed);
    expect(tomb.slice(0, 4)).toEqual([s.consumed, '1', String(s.consumer.pid), s.consumer.host]);
    expect(tomb[4]).toMatch(/util\.ts:\d+:\d+$/);
    expect(tomb[6]).toMatch(/^yes \(\d+s left\)$/);

    expect(out).toContain(`\nOrphans: objects that belong to nothing (${s.orphans.length}) - gc evicts these\n  KEY `);
    for (const key of s.orphans) expect(row(out, key)).toEqual([key, expect.stringMatching(/s$/), 'none']);
    for (const key of [...s.contextMembers, ...s.leaseMembers]) expect(out).not.toContain(key);

    expect(out).toContain('\nOther keys (2): not written by proxystore-redis; gc leaves them alone\n');
  });

  test('--limit cuts each table and says how many more there are; the counts stay complete', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: false });
    const r = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target), '--limit', '2']);
    expect(r.limit).toBe(2);
    expect(r.orphans.count).toBe(s.orphans.length);
    expect(r.orphans.items).toHaveLength(2);
    expect(r.lifetimes).toMatchObject({ count: 3, items: [expect.anything(), expect.anything()] });
    const text = await cli(['inspect', '-n', namespace, ...targetArgs(target), '--limit', '2']);
    expect(text.stdout).toContain(`  ... and ${s.orphans.length - 2} more (--limit 0 lists all)`);
  });

  test('what --url points at is detected: a node of a Redis Cluster means every master is scanned', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: false });
    const node = target.kind === 'cluster' ? (target.nodes[1] as { host: string; port: number }) : undefined;
    const url = node ? `redis://${node.host}:${node.port}` : (target as { url: string }).url;
    const r = await cliJson<InspectReport>(['inspect', '-n', namespace, '--url', url]);
    expect(r.cluster).toBe(target.kind === 'cluster');
    if (node) expect(r.server).toBe(`cluster of 3 masters, detected at ${node.host}:${node.port}`);
    expect(r.orphans.items.map((o) => o.key)).toEqual(s.orphans);
    expect(r.lifetimes.count).toBe(3);
  });

  test('an empty namespace gives empty tables', async ({ target, namespace }) => {
    const run = await cli(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Namespace ${namespace} on `);
    expect(run.stdout).toContain('Lifetimes (0)\n  (none)');
    expect(run.stdout).toContain('Orphans: objects that belong to nothing (0)\n  (none)');
  });
});

describe('inspect KEY', () => {
  test.override({ allowLeftovers: true });

  test('shows an owned object, a lifetime, a member, a consumed object and an orphan in detail', async ({ store, redis, target, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: target.kind === 'single' });
    const base = ['-n', namespace, ...targetArgs(target)];

    const owned = await cliJson<KeyReport>(['inspect', ...base, '--', getKey(s.shared.owner)]);
    expect(owned.lifetime).toBeNull();
    expect(owned.object).toMatchObject({
      key: getKey(s.shared.owner),
      status: 'owned',
      data: { present: true, type: 'string', ttlMs: expect.any(Number) },
      ownership: { ownerPresent: true, sharedBorrows: 1, mutableBorrow: false },
      lifetimes: [],
      tombstone: null,
    });

    const lifetime = await cliJson<KeyReport>(['inspect', ...base, '--', s.context.id]);
    expect(lifetime.object).toBeNull();
    expect(lifetime.lifetime).toMatchObject({ id: s.context.id, kind: 'context', name: 'jobs', state: 'open', members: 2 });
    expect(lifetime.lifetime?.sample).toEqual(
      expect.arrayContaining([
        ...s.contextMembers.map((key) => ({ key, foreign: false, present: true })),
        ...(s.foreignMember ? [{ key: s.foreignMember, foreign: true, present: true }] : []),
      ]),
    );

    const member = await cliJson<KeyReport>(['inspect', ...base, '--', s.leaseMembers[0] as string]);
    expect(member.object).toMatchObject({ status: 'member', lifetimes: [{ id: s.lease.id, own: true, state: 'open' }] });
    expect(member.object?.data.ttlMs).toBeGreaterThan(500_000);

    if (s.foreignMember) {
      const foreign = await cliJson<KeyReport>(['inspect', ...base, '--', s.foreignMember]);
      expect(foreign.object).toMatchObject({ status: 'member', lifetimes: [{ id: s.context.id, own: false, state: 'open' }] });
    }

    const consumed = await cliJson<KeyReport>(['inspect', ...base, '--', s.consumed]);
    expect(consumed.object).toMatchObject({
      status: 'consumed',
      data: { present: false },
      tombstone: { key: s.consumed, consumer: s.consumer, graceCopy: true },
    });

    const orphan = await cliJson<KeyReport>(['inspect', ...base, '--', s.orphans[0] as string]);
    expect(orphan.object).toMatchObject({ status: 'orphan', data: { present: true, type: 'string', ttlMs: null }, lifetimes: [], ownership: null });

    const text = await cli(['inspect', ...base, '--', getKey(s.mutable.owner)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Object \S+ in namespace \S+\n {2}status +owned\n/);
    expect(text.stdout).toMatch(/\n {2}borrows +0 shared borrows, a mutable borrow\n/);
    expect(text.stdout).toMatch(/\n {2}handles +owner +held by \S+, lease ends in \S+\n +mutable held by/);
  });

  test('a key Redis does not know: one line on stderr, exit code 3', async ({ target, namespace }) => {
    const run = await cli(['inspect', 'no-such-key', '-n', namespace, ...targetArgs(target)]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`proxystore-redis: no object or lifetime "no-such-key" in namespace ${namespace}\n`);
  });
});
