import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisConnector, StaticLifetime, Store } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.APP_NAMESPACE ?? 'app',
}), { register: true });

const key = await store.put('config', { lifetime: StaticLifetime.instance() }); // (1)

process.on('SIGTERM', () => void drain()); // (2)

async function drain(): Promise<void> {
  await sleep(500); // requests still in flight ...
  assert.equal(await store.get(key), 'config'); // (3)
  await StaticLifetime.instance().close(); // (4)
  assert.equal(await store.exists(key), false);
  await store.close();
}

process.kill(process.pid, 'SIGTERM'); // (5)
