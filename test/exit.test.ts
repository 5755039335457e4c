/**
 * A process exits promptly after store.close(), whatever it read. ioredis 5's
 * reply parser (redis-parser 3) started a ref'd module-wide interval after a
 * reply of more than ~64 KB and kept the process alive 1.7-3.5 s after its
 * last connection closed (src/redis/parser-timer.ts). This is an exit check,
 * not a speed test: the child reports how long it lived after close().
 */
import { childEnv, runChild } from './harness/child.js';
import { describe, expect, test } from './harness/fixtures.js';

describe('exit after close', () => {
  for (const [label, bytes] of [
    ['8 MB', 8 * 1024 * 1024],
    ['100 kB', 100 * 1024],
  ] as const) {
    test(`after reading ${label}, the process exits within 200 ms of store.close()`, async ({ redisUrl, namespace }) => {
      const out = await runChild('test/children/read-large-exit.ts', {
        args: [String(bytes)],
        env: childEnv({ redisUrl, namespace }),
        timeoutMs: 20_000,
      });
      expect(out.code, out.stderr).toBe(0);
      const report = JSON.parse(out.stdout.trim()) as { bytes: number; lingeredMs: number };
      expect(report.bytes).toBe(bytes);
      expect(report.lingeredMs).toBeLessThan(200);
    });
  }
});
