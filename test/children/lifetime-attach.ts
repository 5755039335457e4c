/**
 * Attaches to the ContextLifetime whose id is in LIFETIME_ID (made by the
 * parent) and, by mode (first argument):
 * - `watch`: puts an object under it, sends { ready, key, done }, then polls
 *   done() until it flips, tries addKey, and sends { flipped: true, error }.
 * - `close`: closes it and sends { closed: true }.
 */
import { ContextLifetime, RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const store = new Store('attach-child', new RedisConnector({
  ...connectionOptions(targetFromEnv()),
  namespace: process.env[CHILD_ENV.namespace] as string,
}));
const lifetime = await ContextLifetime.attach(store, process.env.LIFETIME_ID as string);

function send(msg: unknown): Promise<void> {
  return new Promise((resolve, reject) => process.send?.(msg, undefined, {}, (err) => (err ? reject(err) : resolve())));
}

if (process.argv[2] === 'close') {
  await lifetime.close();
  await send({ closed: true });
} else {
  const key = await store.put('from the child', { lifetime });
  await send({ ready: true, key, done: await lifetime.done() });
  const deadline = Date.now() + 20_000;
  while (!(await lifetime.done())) {
    if (Date.now() > deadline) throw new Error('done() never flipped');
    await new Promise((r) => setTimeout(r, 20));
  }
  const error = await lifetime.addKey(key).then(
    () => undefined,
    (err: Error) => ({ name: err.name, message: err.message }),
  );
  await send({ flipped: true, error });
}
await store.close();
process.disconnect();
