import assert from 'node:assert/strict';
import { ContextLifetime, LifetimeEndedError, RedisConnector, Store } from 'proxystore-redis';

const url = process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const namespace = process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app';

// Process A makes the lifetime and hands its id to process B (in a job, a message, an event).
const storeA = new Store('default', new RedisConnector({ url, namespace }));
const lifetime = await new ContextLifetime(storeA, { name: 'job-42' }).waitUntilReady(); // (1)
const job = { lifetimeId: lifetime.id };

// Process B (here, for the example, a second connection in the same process):
const storeB = new Store('default', new RedisConnector({ url, namespace }));
const shared = await ContextLifetime.attach(storeB, job.lifetimeId); // (2)
const result = await storeB.put({ rows: 1_000 }, { lifetime: shared });

// Process A ends the lifetime: B's object goes with it, and B sees it end.
await lifetime.close(); // (3)
assert.equal(await storeB.exists(result), false);
assert.ok(await shared.done());
await assert.rejects(storeB.put('late', { lifetime: shared }), LifetimeEndedError); // (4)

await storeB.close();
await storeA.close();
