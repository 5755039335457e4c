/**
 * A setResult whose reply is lost (the reply-dropping proxy: the script runs,
 * its reply is thrown away, the connection is cut, ioredis sends it again):
 * the resend recognises its own call (the token in the signal entry) and
 * answers as the first run, instead of FutureAlreadySetError, leaving the
 * same state as a run without the fault (one signal entry). Single Redis
 * only (the proxy stands in front of one server).
 */
import { ContextLifetime, Future, type FutureRef } from '../../src/index.js';
import { describe, test } from '../harness/fixtures.js';
import { expectResendSafe, scriptCall } from './util.js';

describe('a setResult whose reply is lost', () => {
  test('is resent by ioredis and succeeds, leaving the same state as without the fault', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => (await store.future<number[]>({ ttl: 60 })).toJSON(),
      op: (_store, ref: FutureRef) => Future.fromRef<number[]>(ref).setResult([1, 2, 3]).then(() => 'set'),
      drop: () => scriptCall('futureSet'),
      storeOptions: { register: true },
    });
  });

  test('under a lifetime, with reads: the same', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => {
        const lifetime = new ContextLifetime(store);
        return { lifetime, ref: (await store.future<string>({ lifetime, reads: 2, ttl: 60 })).toJSON() };
      },
      op: (_store, s) => Future.fromRef<string>(s.ref).setResult('twice').then(() => 'set'),
      drop: () => scriptCall('futureSet'),
      storeOptions: { register: true },
      cleanup: async (_store, s) => s.lifetime.close(),
    });
  });
});
