/**
 * Running one operation twice, once plainly and once with its reply lost
 * (test/harness/reply-dropper.ts: the command runs, its reply is thrown
 * away, the connection is cut and ioredis resends the command, which runs a
 * second time), and comparing what the caller sees and what Redis holds.
 *
 * Redis state is compared as a multiset of normalized keys: random ids and
 * tokens become `<id>`, Unix-ms times (in values and as key expiries) become
 * offsets from the moment the operation started (server clock), compared
 * within a tolerance. The reconnect after the cut is slowed to
 * {@link RECONNECT_MS}, so a resend that re-applied a relative expiry ("in
 * 30 s from now") would land that much later than the tolerance allows.
 */
import type { Redis } from 'ioredis';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { RedisConnector, Store, type StoreOptions } from '../../src/index.js';
import { deleteNamespaceKeys, expect } from '../harness/fixtures.js';
import { startReplyDropper, type ReplyDropper, type SeenCommand } from '../harness/reply-dropper.js';

/** How long ioredis waits before reconnecting after the dropper cut the connection. */
export const RECONNECT_MS = 1000;
/** How far apart two runs' times and expiries may be (ms): well under {@link RECONNECT_MS}. */
export const TOLERANCE_MS = 400;

type ScriptName = keyof typeof LUA_SCRIPTS;

/** Matches a call of script `name` (EVALSHA, or EVAL of its source); `nth`: only its nth call from now on. */
export function scriptCall(name: ScriptName, nth = 1): (args: string[]) => boolean {
  const script = LUA_SCRIPTS[name];
  let seen = 0;
  return (args) => {
    const hit = (args[0] === 'evalsha' && args[1] === script.sha) || (args[0] === 'eval' && script.source.startsWith(args[1] ?? '\0'));
    return hit && ++seen === nth;
  };
}

/** Whether a seen command is a call of script `name`. */
export function isCall(name: ScriptName, cmd: SeenCommand): boolean {
  const script = LUA_SCRIPTS[name];
  return (cmd.args[0] === 'evalsha' && cmd.args[1] === script.sha) || (cmd.args[0] === 'eval' && script.source.startsWith(cmd.args[1] ?? '\0'));
}

/**
 * A command as sent, whatever the form: a script call is the same call as
 * EVALSHA or as EVAL of its source (ioredis sends EVAL first on a new
 * connection, so a resend after a reconnect is an EVAL).
 */
export function callKey(cmd: SeenCommand): string {
  const [name, first, ...rest] = cmd.args;
  if (name === 'eval' || name === 'evalsha') {
    const script = Object.values(LUA_SCRIPTS).find((s) => (name === 'evalsha' ? s.sha === first : s.source.startsWith(first ?? '\0')));
    if (script) return ['script', script.sha, ...rest].join(' ');
  }
  return cmd.args.join(' ');
}

/** How many times `cmd` went through `dropper` since command number `from`. */
export function sentTimes(dropper: ReplyDropper, cmd: SeenCommand, from = 0): number {
  const key = callKey(cmd);
  return dropper.seen.slice(from).filter((c) => callKey(c) === key).length;
}

/** A store whose connection goes through `dropper`, reconnecting after {@link RECONNECT_MS}. */
export function storeThrough(dropper: ReplyDropper, namespace: string, options: StoreOptions = {}, redisOptions = {}): Store {
  return new Store(
    `resend-${namespace}-${Math.random().toString(36).slice(2, 8)}`,
    new RedisConnector({ url: dropper.url, namespace, redisOptions: { retryStrategy: () => RECONNECT_MS, ...redisOptions } }),
    options,
  );
}

/** The Redis server's clock, ms. */
export async function serverNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

const ID = /[A-Za-z0-9_-]{16,64}/g;
const TIME = /(?<![0-9])1[0-9]{12}(?![0-9])/g;

interface Entry {
  /** Key, type and value, normalized. */
  text: string;
  /** Its expiry relative to the start (-1: none). */
  horizon: number;
  /** The times in its value, relative to the start. */
  times: number[];
}

function normalize(text: string, start: number, times: number[], namespace: string): string {
  return text
    .split(namespace)
    .join('<ns>')
    .replace(TIME, (t) => {
      times.push(Number(t) - start);
      return '<t>';
    })
    .replace(ID, '<id>');
}

function shown(value: Buffer): string {
  // Bytes the library wrote as text (tombstones, markers, hash fields) read as text; object bytes as hex.
  const text = value.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) ? text : `hex:${value.toString('hex')}`;
}

/** Every key of `namespace`, normalized (see the module comment), sorted. */
export async function snapshot(redis: Redis, namespace: string, start: number): Promise<Entry[]> {
  const keys = await redis.keys(`${namespace}:{*`);
  const out: Entry[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    const times: number[] = [];
    let value: string;
    if (type === 'string') value = shown((await redis.getBuffer(key)) ?? Buffer.alloc(0));
    else if (type === 'hash') {
      const fields = await redis.hgetallBuffer(key);
      value = Object.entries(fields)
        // (Field names with ids, e.g. a chunked object's '<write id>:<i>', sort as normalized.)
        .map(([f, v]) => `${f.replace(ID, '<id>')}=${shown(v)}`)
        .sort()
        .join(' ');
    } else if (type === 'set') value = (await redis.smembersBuffer(key)).map(shown).sort().join(' ');
    else if (type === 'zset') value = (await redis.zrange(key, 0, -1, 'WITHSCORES')).join(' ');
    // A future's signal: how many entries (a resend must not add one) and their fields.
    else if (type === 'stream') value = (await redis.xrange(key, '-', '+')).map(([, fields]) => fields.filter((_, i) => i % 2 === 0).join(',')).join(' ');
    else value = `<${type}>`;
    const expireAt = await redis.pexpiretime(key);
    const text = normalize(`${key} ${type} ${value}`, start, times, namespace);
    out.push({ text, horizon: expireAt < 0 ? -1 : expireAt - start, times });
  }
  // Sorted so that both runs line up although their ids differ.
  return out.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

/** Two snapshots hold the same keys and values, with times and expiries within {@link TOLERANCE_MS}. */
export function expectSameState(faulted: Entry[], plain: Entry[], what: string, tolerance = TOLERANCE_MS): void {
  expect(faulted.map((e) => e.text), `${what}: keys and values`).toEqual(plain.map((e) => e.text));
  faulted.forEach((e, i) => {
    const p = plain[i] as Entry;
    if (p.horizon === -1 || e.horizon === -1) expect(e.horizon, `${what}: expiry of ${e.text}`).toBe(p.horizon);
    else expect(Math.abs(e.horizon - p.horizon), `${what}: expiry of ${e.text} (${e.horizon} vs ${p.horizon} ms)`).toBeLessThan(tolerance);
    expect(e.times.length).toBe(p.times.length);
    e.times.forEach((t, j) =>
      expect(Math.abs(t - (p.times[j] as number)), `${what}: time ${j} in ${e.text} (${t} vs ${p.times[j]} ms)`).toBeLessThan(tolerance),
    );
  });
}

/** One scenario: `setup` before the fault is armed, `op` the operation whose reply is lost. */
export interface Scenario<S, R> {
  setup(store: Store): Promise<S>;
  op(store: Store, state: S): Promise<R>;
  /** The command whose reply is lost (a fresh matcher per run). */
  drop: () => (args: string[]) => boolean;
  /** What the caller sees, in a comparable form (default: the result itself). */
  seen?: (result: R, state: S) => unknown;
  /** Run after the snapshot (e.g. close what the scenario opened). */
  cleanup?: (store: Store, state: S) => Promise<void>;
  storeOptions?: StoreOptions;
  /**
   * Extra tolerance for times and expiries (ms): the steps of a multi-step
   * operation that come after the lost reply run one reconnect later than
   * without the fault (close: its 'ended' marker), so their times shift by it.
   */
  slack?: number;
}

/**
 * Run `scenario` plainly, then with the reply of its `drop` command lost;
 * check that the command really ran twice, and that the caller saw the same
 * result and Redis holds the same state in both runs.
 */
export async function expectResendSafe<S, R>(
  ctx: { redis: Redis; namespace: string; redisUrl: string },
  scenario: Scenario<S, R>,
): Promise<{ plain: R; faulted: R }> {
  const dropper = await startReplyDropper(ctx.redisUrl);
  try {
    const run = async (fault: boolean) => {
      const store = storeThrough(dropper, ctx.namespace, scenario.storeOptions);
      try {
        const state = await scenario.setup(store);
        const start = await serverNow(ctx.redis);
        const from = dropper.seen.length;
        const dropped = fault ? dropper.dropNextReply(scenario.drop()) : undefined;
        const result = await scenario.op(store, state);
        if (dropped) {
          const cmd = await dropped;
          // The command ran, lost its reply, and ran again: the resend.
          expect(sentTimes(dropper, cmd, from), 'the command was sent twice (the resend)').toBeGreaterThanOrEqual(2);
        }
        // A consume releases its grace copy once it has the value, unawaited: compare the settled state.
        await store.connector.graceReleased();
        const state2 = await snapshot(ctx.redis, ctx.namespace, start);
        const seen = scenario.seen ? scenario.seen(result, state) : result;
        await scenario.cleanup?.(store, state);
        return { result, seen, state: state2 };
      } finally {
        await store.close();
        await deleteNamespaceKeys(ctx.redis, ctx.namespace);
      }
    };
    const plain = await run(false);
    const faulted = await run(true);
    expect(faulted.seen, 'what the caller sees').toEqual(plain.seen);
    expectSameState(faulted.state, plain.state, 'Redis after the operation', TOLERANCE_MS + (scenario.slack ?? 0));
    return { plain: plain.result, faulted: faulted.result };
  } finally {
    await dropper.close();
  }
}
