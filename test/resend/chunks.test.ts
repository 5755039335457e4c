/**
 * Chunked writes whose reply is lost (test/harness/reply-dropper.ts): the
 * commit (lua/chunkCommit.lua, and objectPut / update given a staging
 * hash) runs, its reply is thrown away, ioredis resends it; the resend finds
 * the data key holding this very write and changes nothing. The caller sees
 * the same result and Redis holds the same state as without the fault.
 * Single Redis only (the proxy stands in front of one server).
 */
import { mutBorrow, release, resolve, update, drop, getKey } from '../../src/index.js';
import { describe, test } from '../harness/fixtures.js';
import { RECONNECT_MS, expectResendSafe, scriptCall } from './util.js';

const CHUNK = 1024;
// Not random: hex of random bytes can look like a Unix-ms time to the state comparison.
const VALUE = Buffer.alloc(5 * CHUNK + 1, 0xab);

describe('a chunked write whose reply is lost', () => {
  test('chunkCommit (a plain put with a ttl): the resend is recognised', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async () => undefined,
      op: async (store) => {
        const key = await store.put(VALUE, { ttl: 60 });
        return { same: Buffer.compare((await store.get<Buffer>(key)) as Buffer, VALUE) === 0 };
      },
      drop: () => scriptCall('chunkCommit'),
      storeOptions: { chunkSize: CHUNK },
    });
  });

  test('objectPut of staged chunks (reads: 2): the resend is recognised', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async () => undefined,
      op: async (store) => {
        const key = await store.put(VALUE, { reads: 2, ttl: 60 });
        return { same: Buffer.compare((await store.get<Buffer>(key)) as Buffer, VALUE) === 0 };
      },
      drop: () => scriptCall('objectPut'),
      storeOptions: { chunkSize: CHUNK },
    });
  });

  test('update of an owned chunked object: the resend is recognised (one version bump, the new chunks only)', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => {
        const owned = await store.ownedProxy({ blob: VALUE, v: 1 });
        const writer = await mutBorrow(owned);
        (await resolve(writer)).v = 2;
        (await resolve(writer)).blob = Buffer.alloc(6 * CHUNK, 0xcd);
        return { owned, writer };
      },
      op: async (store, { owned, writer }) => {
        await update(writer);
        const back = (await store.get<{ v: number; blob: Buffer }>(getKey(owned))) as { v: number; blob: Buffer };
        return { v: back.v, length: back.blob.length };
      },
      drop: () => scriptCall('update'),
      cleanup: async (_store, { owned, writer }) => {
        await release(writer);
        await drop(owned);
      },
      storeOptions: { chunkSize: CHUNK },
      // The owner's renewal after the reconnect settles the object's expiries
      // again from its own moment (as in the plain ownership resend tests,
      // which measure expiries from the snapshot): the data key's expiry may
      // move by the reconnect. What is compared exactly: one version bump,
      // only the new write's chunks, no staging hash left.
      slack: RECONNECT_MS + 200,
    });
  });
});
