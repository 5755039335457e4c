/**
 * Stress-test borrower: on { go: true }, for DURATION_MS keeps asking its
 * parent (the owner) for random shared or mutable borrows of one object,
 * receives each as a ref, holds it a moment and releases it itself, then
 * pauses a moment (without pauses, eight readers would starve every writer:
 * the rules have no queue, in ProxyStore either). A mutable holder increments
 * the object's `n` and updates it.
 *
 * Each interval is logged as inner bounds on the holding time: `acquiredAt`
 * after the ref arrived (the grant happened before it was sent), `releasedAt`
 * before calling release. `released: false` means the lease had lapsed (the
 * release was refused), so the interval proves nothing and is not checked.
 *
 * Messages out: { ready: true }; { want: 'shared' | 'mut', id };
 *   finally { done: Interval[], busy: number }.
 * Messages in:  { go: true }; { id, ref } or { id, busy: true } or { id, error }.
 */
import {
  RedisConnector,
  ReferenceInvalidError,
  Store,
  fromRef,
  release,
  resolve,
  update,
  type RefMutProxy,
} from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
  leaseTtl: Number(process.env.LEASE_TTL),
});
const durationMs = Number(process.env.DURATION_MS);

interface Interval {
  pid: number;
  kind: 'shared' | 'mut';
  acquiredAt: number;
  releasedAt: number;
  released: boolean;
  updated: boolean;
}
type Reply = { id: number; ref?: unknown; busy?: true; error?: string };

const waiting = new Map<number, (reply: Reply) => void>();
let nextId = 1;
function ask(kind: 'shared' | 'mut'): Promise<Reply> {
  const id = nextId++;
  return new Promise((res) => {
    waiting.set(id, res);
    process.send?.({ want: kind, id });
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(): Promise<void> {
  const log: Interval[] = [];
  let busy = 0;
  const deadline = Date.now() + durationMs;
  // On a loaded machine a child may get few turns in DURATION_MS: it goes on (up to three times
  // as long) until it has held at least two borrows of each kind, so the test's minimum counts
  // measure the rules, not the machine's load.
  const held = (kind: string) => log.filter((i) => i.kind === kind && i.released).length;
  const enough = () => held('mut') >= 2 && held('shared') >= 2;
  while (Date.now() < deadline || (!enough() && Date.now() < deadline + 2 * durationMs)) {
    const kind = Math.random() < 0.5 ? 'mut' : 'shared';
    const reply = await ask(kind);
    if (reply.error) throw new Error(reply.error);
    if (reply.busy) {
      busy++;
      await sleep(Math.random() * 3);
      continue;
    }
    const handle = fromRef<{ n: number }>(reply.ref);
    const acquiredAt = Date.now();
    let updated = false;
    const value = await resolve(handle);
    if (kind === 'mut') {
      value.n += 1;
      try {
        await update(handle as RefMutProxy<{ n: number }>);
        updated = true;
      } catch (err) {
        if (!(err instanceof ReferenceInvalidError)) throw err;
      }
    }
    await sleep(Math.random() * 5);
    const releasedAt = Date.now();
    let released = true;
    try {
      await release(handle as RefMutProxy<{ n: number }>);
    } catch (err) {
      if (!(err instanceof ReferenceInvalidError)) throw err;
      released = false;
    }
    log.push({ pid: process.pid, kind, acquiredAt, releasedAt, released, updated });
    await sleep(Math.random() * 20);
  }
  process.send?.({ done: log, busy }, () => {
    void store.close().then(() => process.disconnect());
  });
}

process.on('message', (msg: { go?: true } & Partial<Reply>) => {
  if (msg.go) {
    run().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  } else if (typeof msg.id === 'number') {
    waiting.get(msg.id)?.(msg as Reply);
    waiting.delete(msg.id);
  }
});
process.send?.({ ready: true });
