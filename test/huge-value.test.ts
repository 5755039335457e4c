/**
 * A value three times Redis's largest string (proto-max-bulk-len, 512 MB by
 * default) put and got back byte for byte (issue 16, DESIGN §7.4): a 1.5 GB
 * Buffer, on a default redis-server this file starts (the run's Redis may be
 * shared or small), in a child process of its own so that the test runner's
 * memory stays small. Digests are compared, not buffers. Slow by nature
 * (gigabytes through a local socket on a shared machine): a generous timeout,
 * no timing assertion.
 */
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { childEnv, runChild } from './harness/child.js';
import { afterAll, beforeAll, expect, test } from './harness/fixtures.js';

let server: LocalRedis;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

const GB = 1024 ** 3;

test('a 1.5 GB Buffer round-trips intact on a default Redis (512 MB proto-max-bulk-len)', { timeout: 600_000 }, async ({ namespace }) => {
  const out = await runChild('test/children/huge-roundtrip.ts', {
    env: childEnv({ redisUrl: server.url, namespace }),
    args: [String(1.5 * GB)],
    execArgv: ['--expose-gc'],
    timeoutMs: 580_000,
  });
  expect(out.code, out.stderr).toBe(0);
  const result = JSON.parse(out.stdout.trim().split('\n').pop() as string) as {
    bytes: number;
    put: string;
    got: string;
    dataKeyType: string;
    keysAfterEvict: string[];
  };
  expect(result.bytes).toBe(1.5 * GB);
  expect(result.dataKeyType).toBe('hash'); // chunked: no single Redis string could hold it
  expect(result.got).toBe(result.put);
  expect(result.keysAfterEvict).toEqual([]);
});
