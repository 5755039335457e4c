/**
 * Every ownership operation is safe to resend. Through the reply-dropping
 * proxy (test/harness/reply-dropper.ts) the operation's script runs, its
 * reply is lost with the connection, and ioredis resends it on a new one,
 * so it runs a second time with the same arguments. For each operation the
 * caller must get the same result as without the fault, and Redis must hold
 * the same state: the same keys, fields and members (random keys and tokens
 * compared by role), and the same lease ends and key TTL horizons (within
 * the time the fault itself takes).
 *
 * Needs a server of its own (the proxy sits in front of it): single only.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import {
  ContextLifetime,
  RedisConnector,
  Store,
  borrow,
  clone,
  drop,
  extract,
  getKey,
  intoOwned,
  isValid,
  mutBorrow,
  release,
  resolve,
  update,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
} from '../../src/index.js';
import { objectKeys } from '../../src/ownership/handle.js';
import { renewalOf } from '../../src/ownership/renewal.js';
import { proxyState } from '../../src/proxy/proxy.js';
import type { ScriptName } from '../../src/redis/scripts.js';
import { startReplyDropper, type ReplyDropper } from '../harness/reply-dropper.js';
import { afterAll, beforeAll, describe, expect, test } from '../harness/fixtures.js';

/** Long leases: nothing lapses during a test, and lease ends differ only by the fault's delay. */
const LEASE_TTL = 20;
/** How far apart two lease ends or TTL horizons may be: the fault's reconnect plus the runs' own pace. */
const SLACK_MS = 2_000;

/** What one run of a scenario needs: its store, a second holder (another process, as far as Redis can tell) and role labels. */
interface Ctx {
  store: Store;
  other: Store;
  /** Random strings (store keys, tokens, holder ids) -> the role they play, for comparing two runs. */
  labels: Map<string, string>;
  handles: Record<string, unknown>;
}

interface Scenario {
  name: string;
  /** The script whose reply is lost. */
  script: ScriptName;
  setup(ctx: Ctx): Promise<void>;
  /** The operation under test; what it returns is compared between the runs. */
  act(ctx: Ctx): Promise<unknown>;
}

function labelHandle(ctx: Ctx, handle: unknown, role: string): void {
  const state = proxyState(handle);
  if (!state) return;
  if (!ctx.labels.has(state.key)) ctx.labels.set(state.key, `<key:${role}>`);
  if (state.token !== undefined) ctx.labels.set(state.token, `<token:${role}>`);
  ctx.handles[role] = handle;
}

const owned = (ctx: Ctx, role = 'owner') => ctx.handles[role] as OwnedProxy<{ n: number }>;

const SCENARIOS: Scenario[] = [
  {
    name: 'ownedProxy',
    script: 'ownedCreate',
    setup: async () => undefined,
    act: async (ctx) => {
      const o = await ctx.store.ownedProxy({ n: 1 });
      labelHandle(ctx, o, 'owner');
      return { valid: isValid(o), value: extract(o) };
    },
  },
  {
    name: 'ownedProxy with a lifetime',
    script: 'lifetimeOwnedCreate',
    setup: async (ctx) => {
      ctx.handles.lifetime = await new ContextLifetime(ctx.store).waitUntilReady();
    },
    act: async (ctx) => {
      const o = await ctx.store.ownedProxy({ n: 1 }, { lifetime: ctx.handles.lifetime as ContextLifetime });
      labelHandle(ctx, o, 'owner');
      return { valid: isValid(o), value: extract(o) };
    },
  },
  {
    name: 'intoOwned of a lifetime member',
    script: 'intoOwned',
    setup: async (ctx) => {
      const lifetime = new ContextLifetime(ctx.store);
      ctx.handles.lifetime = lifetime;
      labelHandle(ctx, await ctx.store.proxy({ n: 1 }, { lifetime }), 'plain');
    },
    act: async (ctx) => {
      const o = await intoOwned(ctx.handles.plain as { n: number });
      labelHandle(ctx, o, 'owner');
      return { valid: isValid(o), value: extract(o) };
    },
  },
  {
    name: 'lifetime close with a borrowed and an unborrowed owned member',
    script: 'lifetimeClose',
    setup: async (ctx) => {
      const lifetime = new ContextLifetime(ctx.store);
      ctx.handles.lifetime = lifetime;
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }, { lifetime }), 'owner');
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 2 }, { lifetime }), 'free');
      labelHandle(ctx, await borrow(owned(ctx)), 'borrow');
    },
    act: async (ctx) => {
      await (ctx.handles.lifetime as ContextLifetime).close();
      return {
        kept: await ctx.store.exists(getKey(owned(ctx))),
        evicted: !(await ctx.store.exists(getKey(owned(ctx, 'free')))),
        read: await resolve(ctx.handles.borrow as RefProxy<{ n: number }>),
      };
    },
  },
  {
    name: 'release of the last borrow of a member whose lifetime ended (evicts)',
    script: 'release',
    setup: async (ctx) => {
      const lifetime = new ContextLifetime(ctx.store);
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }, { lifetime }), 'owner');
      labelHandle(ctx, await borrow(owned(ctx)), 'borrow');
      await lifetime.close();
    },
    act: async (ctx) => {
      await release(ctx.handles.borrow as RefProxy<unknown>);
      return { valid: isValid(ctx.handles.borrow), exists: await ctx.store.exists(getKey(owned(ctx))) };
    },
  },
  {
    name: 'intoOwned',
    script: 'intoOwned',
    setup: async (ctx) => {
      const p = await ctx.store.proxy({ n: 1 });
      labelHandle(ctx, p, 'plain');
    },
    act: async (ctx) => {
      const o = await intoOwned(ctx.handles.plain as { n: number });
      labelHandle(ctx, o, 'owner');
      // The owner is renewed: its lease and the object outlive the plain object's life.
      return { valid: isValid(o), value: extract(o) };
    },
  },
  {
    name: 'borrow',
    script: 'borrow',
    setup: async (ctx) => labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner'),
    act: async (ctx) => {
      const b = await borrow(owned(ctx));
      labelHandle(ctx, b, 'borrow');
      return { valid: isValid(b), value: extract(b) };
    },
  },
  {
    name: 'mutBorrow',
    script: 'mutBorrow',
    setup: async (ctx) => labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner'),
    act: async (ctx) => {
      const b = await mutBorrow(owned(ctx));
      labelHandle(ctx, b, 'writer');
      return { valid: isValid(b), value: extract(b) };
    },
  },
  {
    name: 'release',
    script: 'release',
    setup: async (ctx) => {
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner');
      labelHandle(ctx, await borrow(owned(ctx)), 'borrow');
    },
    act: async (ctx) => {
      await release(ctx.handles.borrow as RefProxy<unknown>);
      return { valid: isValid(ctx.handles.borrow), ownerValid: isValid(owned(ctx)) };
    },
  },
  {
    name: 'release of the last borrow of an abandoned owner (evicts)',
    script: 'release',
    setup: async (ctx) => {
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner');
      labelHandle(ctx, await borrow(owned(ctx)), 'borrow');
      const state = proxyState(owned(ctx))!;
      const keys = objectKeys(ctx.store, state.key);
      expect(await ctx.store.connector.scripts.run('abandon', keys, { owner: state.token!, call: 'setupAbandonCall000000' })).toBe(2);
    },
    act: async (ctx) => {
      await release(ctx.handles.borrow as RefProxy<unknown>);
      return { valid: isValid(ctx.handles.borrow), exists: await ctx.store.exists(getKey(owned(ctx))) };
    },
  },
  {
    name: 'update',
    script: 'update',
    setup: async (ctx) => {
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner');
      const w = await mutBorrow(owned(ctx));
      labelHandle(ctx, w, 'writer');
      (await resolve(w)).n = 2;
    },
    act: async (ctx) => {
      await update(ctx.handles.writer as RefMutProxy<{ n: number }>);
      return { stored: await ctx.store.get(getKey(owned(ctx))) };
    },
  },
  {
    name: 'drop',
    script: 'drop',
    setup: async (ctx) => labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner'),
    act: async (ctx) => {
      await drop(owned(ctx));
      return { valid: isValid(owned(ctx)), exists: await ctx.store.exists(getKey(owned(ctx))) };
    },
  },
  {
    name: 'clone',
    script: 'clone',
    setup: async (ctx) => labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner'),
    act: async (ctx) => {
      const c = await clone(owned(ctx));
      labelHandle(ctx, c, 'clone');
      return { valid: isValid(c), value: extract(c), stored: await ctx.store.get(getKey(c)) };
    },
  },
  {
    name: 'abandon (store.close() of an owner borrowed elsewhere)',
    script: 'abandon',
    setup: async (ctx) => {
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner');
      // The borrow moves to the other store (another holder), which keeps it past the close.
      const b = await borrow(owned(ctx));
      labelHandle(ctx, b, 'borrow');
      const { fromRef, toRef } = await import('../../src/index.js');
      // Revived through the registered store of the same name: `other`.
      ctx.handles.moved = fromRef(JSON.parse(JSON.stringify(toRef(b))));
      await renewalOf(ctx.other).tick();
    },
    act: async (ctx) => {
      await ctx.store.close();
      return { ownerValid: isValid(owned(ctx)), exists: await ctx.other.exists(getKey(owned(ctx))) };
    },
  },
  {
    name: 'renew (the heartbeat)',
    script: 'renew',
    setup: async (ctx) => {
      labelHandle(ctx, await ctx.store.ownedProxy({ n: 1 }), 'owner');
      labelHandle(ctx, await borrow(owned(ctx)), 'borrow');
    },
    act: async (ctx) => {
      await renewalOf(ctx.store).tick();
      return { valid: isValid(owned(ctx)) && isValid(ctx.handles.borrow) };
    },
  },
  {
    name: 'resolve of a handle (lease-checked read)',
    script: 'handleRead',
    setup: async (ctx) => {
      const o = await ctx.store.ownedProxy({ n: 1 }, { populateTarget: false });
      labelHandle(ctx, o, 'owner');
      labelHandle(ctx, await borrow(o), 'borrow');
    },
    act: async (ctx) => ({ value: await resolve(ctx.handles.borrow as RefProxy<{ n: number }>) }),
  },
];

/** Whether a command is a call of `script`: EVALSHA by its SHA, or EVAL (ioredis's first call on a connection) by its header. */
function isCall(script: ScriptName, args: string[]): boolean {
  if (args[0] === 'evalsha') return args[1] === LUA_SCRIPTS[script].sha;
  return args[0] === 'eval' && (args[1] ?? '').startsWith(`-- ${script}: `);
}

interface KeyState {
  key: string;
  type: string;
  /** ms from now, -1 without TTL */
  expiresIn: number;
  /** Strings as base64; hash fields sorted (`seen`, a server time, dropped; other server times as ms from now); zset members with their score as ms from now. */
  content: unknown;
}

/** Replace roles, the namespace and any remaining random id (per-call tokens) in a string. */
function normalize(text: string, ctx: Ctx, namespace: string): string {
  let out = text.split(`${namespace}:`).join('NS:');
  // Longest first, so a key never matches inside a longer one.
  for (const [raw, role] of [...ctx.labels].sort((a, b) => b[0].length - a[0].length)) out = out.split(raw).join(role);
  return out.replace(/[A-Za-z0-9_-]{22}/g, '<id>');
}

async function snapshot(redis: Redis, namespace: string, ctx: Ctx): Promise<KeyState[]> {
  const [sec, usec] = (await redis.time()) as unknown as [string, string];
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const keys = (await redis.keys(`${namespace}:{*`)).sort();
  const out: KeyState[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    const at = await redis.pexpiretime(key);
    let content: unknown;
    if (type === 'string') content = (await redis.getBuffer(key))?.toString('base64');
    else if (type === 'hash') {
      const fields = await redis.hgetall(key);
      content = Object.entries(fields)
        .filter(([f]) => f !== 'seen')
        // Server times (a lifetime's createdAt, an owner's until or endedAt) as ms from now.
        .map(([f, v]) => [normalize(f, ctx, namespace), /^\d{13}$/.test(v) ? Number(v) - now : normalize(v, ctx, namespace)])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    } else if (type === 'zset') {
      const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
      const pairs: [string, number][] = [];
      for (let i = 0; i < flat.length; i += 2) pairs.push([normalize(flat[i]!, ctx, namespace), Number(flat[i + 1]) - now]);
      content = pairs.sort((a, b) => a[0].localeCompare(b[0]));
    } else content = type;
    out.push({ key: normalize(key, ctx, namespace), type, expiresIn: at < 0 ? at : at - now, content });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Equal, except that numbers (times from now) may differ by SLACK_MS. */
function expectSameState(faulted: unknown, clean: unknown, path = 'state'): void {
  if (typeof clean === 'number' && typeof faulted === 'number') {
    expect(Math.abs(faulted - clean), `${path}: ${faulted} vs ${clean}`).toBeLessThanOrEqual(SLACK_MS);
    return;
  }
  if (Array.isArray(clean)) {
    expect(Array.isArray(faulted), path).toBe(true);
    expect((faulted as unknown[]).length, `${path}: ${JSON.stringify(faulted)} vs ${JSON.stringify(clean)}`).toBe(clean.length);
    clean.forEach((v, i) => expectSameState((faulted as unknown[])[i], v, `${path}[${i}]`));
    return;
  }
  if (typeof clean === 'object' && clean !== null) {
    expect(Object.keys(faulted as object).sort(), path).toEqual(Object.keys(clean).sort());
    for (const [k, v] of Object.entries(clean)) expectSameState((faulted as Record<string, unknown>)[k], v, `${path}.${k}`);
    return;
  }
  expect(faulted, path).toEqual(clean);
}

describe('every ownership operation, its reply lost and resent by ioredis', () => {
  let server: LocalRedis;
  let dropper: ReplyDropper;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    dropper = await startReplyDropper(server.url);
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await dropper?.close();
    await server?.stop();
  });

  async function run(scenario: Scenario, namespace: string, fault: boolean) {
    // Same name: a handle revived from a ref (fromRef) is served by the registered one, `other`.
    const store = new Store(`resend-${namespace}`, new RedisConnector({ url: dropper.url, namespace }), { leaseTtl: LEASE_TTL });
    const other = new Store(`resend-${namespace}`, new RedisConnector({ url: server.url, namespace }), {
      leaseTtl: LEASE_TTL,
      register: true,
    });
    const ctx: Ctx = { store, other, labels: new Map(), handles: {} };
    ctx.labels.set(renewalOf(store).holder, '<holder>');
    ctx.labels.set(renewalOf(other).holder, '<other holder>');
    try {
      await scenario.setup(ctx);
      const calls = () => dropper.seen.filter((c) => isCall(scenario.script, c.args)).length;
      const before = calls();
      const dropped = fault ? dropper.dropNextReply((args) => isCall(scenario.script, args)) : undefined;
      let result: unknown;
      try {
        result = await scenario.act(ctx);
      } catch (err) {
        result = { error: (err as Error).name, message: normalize((err as Error).message, ctx, namespace) };
      }
      if (dropped) {
        await dropped;
        // The script ran, lost its reply, and ran again.
        expect(calls() - before).toBeGreaterThanOrEqual(2);
      }
      return { result, state: await snapshot(admin, namespace, ctx) };
    } finally {
      await store.close();
      await other.close();
      const left = await admin.keys(`${namespace}:{*`);
      if (left.length > 0) await admin.del(...left);
    }
  }

  test.for(SCENARIOS.map((s) => [s.name, s] as const))(
    '%s: same result, same Redis state as without the fault',
    async ([, scenario], { namespace }) => {
      const clean = await run(scenario, `${namespace}-clean`, false);
      const faulted = await run(scenario, `${namespace}-fault`, true);
      expect(faulted.result).toEqual(clean.result);
      expect(clean.state.length).toBeGreaterThan(0);
      expectSameState(faulted.state, clean.state);
    },
  );
});
