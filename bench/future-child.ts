/**
 * The other side of the futures handoff benchmark, in its own process:
 * `count` ping-pongs with the parent. `lib`: await future <i>-a, then set
 * future <i>-b to what it got; `raw`: BLPOP list a, then LPUSH list b.
 * argv: mode url namespace count run (a run id: keys are new each run).
 * Prints "ready" once connected and "done" when it has finished.
 */
import { Redis } from 'ioredis';
import { Future, RedisConnector, Store, type FutureRef } from '../src/index.js';

const [mode, url, namespace, countText, run] = process.argv.slice(2) as [string, string, string, string, string];
const count = Number(countText);

/** The refs both sides derive for round `i` (keys known to both, no message needed). */
function handoffRef(ns: string, i: number, side: 'a' | 'b'): FutureRef {
  return { __proxystore__: 1, kind: 'future', store: 'bench', namespace: ns, key: `handoff-${run}-${i}-${side}`, ttl: 60 };
}

if (mode === 'lib') {
  const store = new Store('bench', new RedisConnector({ url, namespace }), { register: true });
  await store.ready();
  process.stdout.write('ready\n');
  for (let i = 0; i < count; i++) {
    const value = await Future.fromRef(handoffRef(namespace, i, 'a')).result();
    await Future.fromRef(handoffRef(namespace, i, 'b')).setResult(value);
  }
  await store.close();
} else if (mode === 'raw') {
  const blocking = new Redis(url);
  const sender = new Redis(url);
  await Promise.all([blocking.ping(), sender.ping()]);
  process.stdout.write('ready\n');
  for (let i = 0; i < count; i++) {
    const [, value] = (await blocking.blpop(`${namespace}-raw:handoff-a`, 0)) as [string, string];
    await sender.lpush(`${namespace}-raw:handoff-b`, JSON.stringify(JSON.parse(value)));
  }
  blocking.disconnect();
  await sender.quit();
}
process.stdout.write('done\n');
