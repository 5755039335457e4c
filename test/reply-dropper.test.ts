/**
 * The reply-dropping proxy (test/harness/reply-dropper.ts) does what the
 * resend tests rely on: the chosen command runs, its reply is lost, ioredis
 * resends it on a new connection, and it runs a second time.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { startReplyDropper, type ReplyDropper } from './harness/reply-dropper.js';
import { afterAll, beforeAll, describe, expect, test } from './harness/fixtures.js';

describe('reply-dropper', () => {
  let server: LocalRedis;
  let dropper: ReplyDropper;
  beforeAll(async () => {
    server = await startRedisServer();
    dropper = await startReplyDropper(server.url);
  });
  afterAll(async () => {
    await dropper?.close();
    await server?.stop();
  });

  test('a command whose reply is lost runs twice: once, and again when ioredis resends it', async () => {
    const client = new Redis(dropper.url);
    client.on('error', () => undefined);
    const direct = new Redis(server.url);
    try {
      await client.set('dropper:n', '0');
      const before = dropper.connections;
      const dropped = dropper.dropNextReply((args) => args[0] === 'incr');
      // The caller sees one reply: the resend's.
      expect(await client.incr('dropper:n')).toBe(2);
      expect((await dropped).args).toEqual(['incr', 'dropper:n']);
      expect(await direct.get('dropper:n')).toBe('2');
      expect(dropper.connections).toBe(before + 1);
    } finally {
      client.disconnect();
      await direct.del('dropper:n');
      direct.disconnect();
    }
  });

  test('replies before the dropped one still arrive; the ones after it are resent', async () => {
    const client = new Redis(dropper.url);
    client.on('error', () => undefined);
    const direct = new Redis(server.url);
    try {
      const dropped = dropper.dropNextReply((args) => args[0] === 'incr' && args[1] === 'dropper:b');
      const replies = await Promise.all([client.incr('dropper:a'), client.incr('dropper:b'), client.incr('dropper:c')]);
      await dropped;
      // a's reply came through (1); b ran twice; c's reply was lost with the connection, so c ran twice.
      expect(replies).toEqual([1, 2, 2]);
      expect(await direct.mget('dropper:a', 'dropper:b', 'dropper:c')).toEqual(['1', '2', '2']);
    } finally {
      client.disconnect();
      await direct.del('dropper:a', 'dropper:b', 'dropper:c');
      direct.disconnect();
    }
  });
});
