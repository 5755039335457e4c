/**
 * Holds a borrow received as a ref, unresolved, and resolves it when asked:
 * the test stops this process (SIGSTOP) past the borrow's lease meanwhile.
 * Its store has the test's name and namespace (from the environment) and
 * LEASE_TTL seconds of lease.
 *
 * Messages in:  { ref }        revive the borrow (claimed at once), reply { held: true }
 *               { resolve: 1 } resolve it, reply { value } or { error: name, message }
 */
import { RedisConnector, Store, fromRef, resolve, type ProxyRef } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
  leaseTtl: Number(process.env.LEASE_TTL ?? 30),
});
let held: unknown;

process.on('message', (msg: { ref?: ProxyRef; resolve?: 1 }) => {
  if (msg.ref) {
    held = fromRef(msg.ref);
    process.send?.({ held: true });
  } else if (msg.resolve) {
    resolve(held).then(
      (value) => process.send?.({ value }),
      (err: Error) => process.send?.({ error: err.name, message: err.message }),
    );
  }
});
process.on('disconnect', () => void store.close());
process.send?.({ ready: true });
