/**
 * Resolves a ref whose object is gone and sends the error back twice: as
 * the Error itself (structured clone over IPC) and as its toJSON() form.
 */
import { ProxyStoreError, RedisConnector, Store, fromRef, resolve } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(process.env.STORE_NAME as string, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
});
process.once('message', async (ref: unknown) => {
  const err = await resolve(fromRef(ref)).then(
    () => undefined,
    (e: unknown) => e,
  );
  const json = err instanceof ProxyStoreError ? err.toJSON() : undefined;
  process.send!({ cloned: err, json }, () => void store.close().then(() => process.disconnect()));
});
process.send!({ ready: true });
