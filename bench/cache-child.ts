/**
 * The writer process of the bench's "update -> invalidation lag across
 * processes" row (bench/cases.ts): revives the RefMutProxy it is sent, then
 * on each `{ go: i }` sets the target's `v` to i, `update`s it, and answers
 * `{ i, start, end }`: when the update was called and when it returned, on
 * the shared clock (performance.timeOrigin + performance.now(), ms with
 * fractions).
 *
 * argv: url, namespace, store name.
 */
import { RedisConnector, Store, fromRef, release, resolve, update, type ProxyRef, type RefMutProxy } from '../src/index.js';

const [url, namespace, name] = process.argv.slice(2) as [string, string, string];
const store = new Store(name, new RedisConnector({ url, namespace }), { register: true, cacheSize: 0 });
let writer: RefMutProxy<{ v: number }> | undefined;
const now = () => performance.timeOrigin + performance.now();

process.on('message', (msg: { ref?: ProxyRef; go?: number; stop?: boolean }) => {
  void (async () => {
    if (msg.ref) {
      writer = fromRef(msg.ref) as unknown as RefMutProxy<{ v: number }>;
      await resolve(writer);
      process.send?.({ ready: true });
    } else if (msg.go !== undefined && writer) {
      (await resolve(writer)).v = msg.go;
      const start = now();
      await update(writer);
      const end = now();
      process.send?.({ i: msg.go, start, end });
    } else if (msg.stop) {
      if (writer) await release(writer);
      await store.close();
      process.send?.({ stopped: true }, () => process.disconnect());
    }
  })();
});
process.send?.({ up: true });
