/**
 * The FinalizationRegistry backstop never evicts an owned object whose proxy
 * is still reachable, and does evict one whose proxy became garbage. Run in
 * a child with --expose-gc (test/children/gc-holder.ts), with 1 s leases, so
 * that waiting past the lease also shows the renewal keeps what is held.
 */
import { childEnv, killAllChildren, spawnChild } from './harness/child.js';
import { afterEach, expect, test } from './harness/ownership.js';

const LEASE_TTL = 1;

afterEach(async () => {
  await killAllChildren();
});

test('reachable owners survive forced collections past their lease; a dropped reference is evicted by the backstop', async ({
  store,
  redisUrl,
  namespace,
}) => {
  const child = spawnChild('test/children/gc-holder.ts', {
    env: { ...childEnv({ redisUrl, namespace }), LEASE_TTL: String(LEASE_TTL) },
    execArgv: ['--expose-gc'],
  });
  const { keys } = await child.waitForMessage<{ keys: Record<'owned' | 'kept' | 'forgettable', string> }>((m) => 'keys' in (m as object), 20_000);
  const collected = () => {
    const before = child.messages.filter((m) => (m as { collected?: boolean }).collected).length;
    return child.waitForMessage((m) => (m as { collected?: boolean }).collected === true && child.messages.indexOf(m) >= before, 20_000);
  };

  // Collect for three leases: every reachable owner, and the duplicate's token, survive.
  let done = collected();
  await child.send({ collect: 3 * LEASE_TTL * 1000 });
  await done;
  for (const key of Object.values(keys)) expect(await store.exists(key), key).toBe(true);
  await child.send({ use: 1 });
  const { used } = await child.waitForMessage<{ used: Record<string, unknown> }>((m) => 'used' in (m as object));
  expect(used).toEqual({ owned: 'owned', kept: 'kept' });

  // Drop the reference: the backstop evicts the object, long before any lease would.
  await child.send({ forget: 1 });
  done = collected();
  await child.send({ collect: 2_000 });
  await done;
  await expect.poll(() => store.exists(keys.forgettable), { timeout: 5_000 }).toBe(false);
  expect(await store.exists(keys.owned)).toBe(true);

  await child.send({ exit: 1 });
  expect((await child.exited).code).toBe(0);
});
