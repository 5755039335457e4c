/**
 * What the command line sends, seen with MONITOR (single Redis only): inspect
 * and a gc dry run use read commands only and never read an object's value;
 * gc --yes changes Redis only through the gcEvict script (and UNLINK, in
 * WATCH/MULTI, of a stale staging hash of a chunked write).
 */
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { RedisConnector, Store, getKey } from '../../src/index.js';
import { openMonitor } from '../harness/monitor.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { cli, fillNamespace } from './util.js';

/** Commands that only read (and the connection's own setup). */
const READ = new Set([
  'client', // SETNAME proxystore-redis-cli
  'info',
  'config', // GET, the library's server checks
  'hello', // no arguments: the server's version, the library's server checks
  'time',
  'scan',
  'sscan',
  'type',
  'exists',
  'pttl',
  'sismember',
  'smismember',
  'scard',
  'zcard',
  'hgetall',
  'hmget',
  'zrange',
  'get',
  'object',
  'memory',
  'hget', // a chunked object's manifest field, by inspect KEY only
]);

interface Line {
  args: string[];
  from: string;
}

/**
 * Run `fn` with MONITOR on; the commands of the CLI's connections (named
 * proxystore-redis-cli) that worked on `namespace`: other test files run the
 * CLI on the same Redis at the same time, under the same client name.
 */
async function cliCommands(redis: Parameters<typeof openMonitor>[0], namespace: string, fn: () => Promise<void>): Promise<string[][]> {
  const seen: Line[] = [];
  const stop = await openMonitor(redis, (args, from) => seen.push({ args, from }));
  try {
    await fn();
    const marker = `cli-wire-end-${Date.now()}`;
    await redis.echo(marker);
    for (const until = Date.now() + 5000; !seen.some((l) => l.args[1] === marker); ) {
      if (Date.now() > until) throw new Error('MONITOR never showed the end marker');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    stop();
  }
  const named = (l: Line) =>
    l.args[0]?.toLowerCase() === 'client' && l.args[1]?.toLowerCase() === 'setname' && l.args[2] === 'proxystore-redis-cli';
  const cli = new Set(seen.filter(named).map((l) => l.from));
  const mine = (l: Line) => l.args.some((a) => a.startsWith(`${namespace}:`));
  const ours = new Set(seen.filter((l) => cli.has(l.from) && mine(l)).map((l) => l.from));
  return seen.filter((l) => ours.has(l.from)).map((l) => l.args);
}

describe('the command line on the wire', () => {
  test.override({ allowLeftovers: true });

  test('inspect, inspect KEY and a gc dry run send read commands only, and never GET an object', async ({ store, redis, redisUrl, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: true });
    const base = ['-n', namespace, '--url', redisUrl];
    const commands = await cliCommands(redis, namespace, async () => {
      for (const args of [
        ['inspect', ...base],
        ['inspect', ...base, '--', getKey(s.shared.owner)],
        ['inspect', ...base, '--', s.context.id],
        ['inspect', ...base, '--', s.consumed],
        ['inspect', ...base, '--', s.orphans[0] as string],
        ['gc', ...base],
      ]) {
        const run = await cli(args);
        expect(run.code, run.stderr).toBe(0);
      }
    });
    expect(commands.length).toBeGreaterThan(50);
    for (const [name, ...args] of commands) {
      const command = (name ?? '').toLowerCase();
      expect(READ, `${command} ${args.join(' ')}`).toContain(command);
      if (command === 'get') expect(args[0]).toMatch(new RegExp(`^${namespace}:\\{[^}]+\\}:tomb:`));
      if (command === 'object') expect(['idletime', 'encoding']).toContain(args[0]?.toLowerCase());
      if (command === 'memory') expect(args[0]?.toLowerCase()).toBe('usage');
      if (command === 'config') expect(args[0]?.toLowerCase()).toBe('get');
      if (command === 'client') expect(args[0]?.toLowerCase()).toBe('setname');
    }
    expect(commands.map((c) => c[0]?.toLowerCase())).toContain('scan');
  });

  test('gc --yes writes only through the gcEvict script, one call per orphan', async ({ store, redis, redisUrl, namespace }) => {
    const s = await fillNamespace(store, redis, { foreign: true });
    const gcEvict = LUA_SCRIPTS.gcEvict;
    const commands = await cliCommands(redis, namespace, async () => {
      const run = await cli(['gc', '--yes', '-n', namespace, '--url', redisUrl]);
      expect(run.code, run.stderr).toBe(0);
    });
    const writes = commands.filter(([name]) => !READ.has((name ?? '').toLowerCase()));
    // ioredis sends EVAL with the source the first time on a connection, EVALSHA after.
    for (const [name, first] of writes) {
      if (name?.toLowerCase() === 'eval') expect(first?.startsWith('-- gcEvict: ')).toBe(true);
      else expect([name?.toLowerCase(), first]).toEqual(['evalsha', gcEvict.sha]);
    }
    // One call per orphan; its first KEY is the orphan's data key.
    expect(writes.map((c) => c[3]).sort()).toEqual(s.orphans.map((k) => store.connector.dataKey(k)).sort());
  });

  test('chunked objects: inspect KEY reads the manifest field only; gc --yes unlinks a stale staging hash in WATCH/MULTI', async ({ redis, redisUrl, namespace }) => {
    const chunked = new Store(`wire-chunks-${namespace}`, new RedisConnector({ url: redisUrl, namespace }), { chunkSize: 1024 });
    try {
      const key = await chunked.put(Buffer.alloc(10_000, 4));
      const stale = chunked.connector.keys.stageKey('left-behind', 'w9');
      await redis.hset(stale, 'w9:0', Buffer.alloc(1024));
      const base = ['-n', namespace, '--url', redisUrl];
      const looks = await cliCommands(redis, namespace, async () => {
        for (const args of [['inspect', ...base], ['inspect', ...base, '--', key], ['gc', ...base]]) {
          const run = await cli(args);
          expect(run.code, run.stderr).toBe(0);
        }
      });
      for (const [name, ...args] of looks) {
        const command = (name ?? '').toLowerCase();
        expect(READ, `${command} ${args.join(' ')}`).toContain(command);
        if (command === 'hget') expect(args).toEqual([chunked.connector.dataKey(key), 'm']);
      }
      expect(looks.filter(([name]) => name?.toLowerCase() === 'hget')).toHaveLength(1);

      const evicts = await cliCommands(redis, namespace, async () => {
        const run = await cli(['gc', '--yes', ...base]);
        expect(run.code, run.stderr).toBe(0);
      });
      const writes = evicts.filter(([name]) => !READ.has((name ?? '').toLowerCase()) && !/^evalsha$|^eval$/i.test(name ?? ''));
      expect(new Set(writes.map(([name]) => name?.toLowerCase()))).toEqual(new Set(['watch', 'multi', 'unlink', 'exec', 'unwatch']));
      expect(writes.filter(([name]) => name?.toLowerCase() === 'unlink')).toEqual([[expect.stringMatching(/^unlink$/i), stale]]);
      expect(writes.filter(([name]) => name?.toLowerCase() === 'watch')).toEqual([[expect.stringMatching(/^watch$/i), stale]]);
      expect(await redis.exists(stale)).toBe(0);
      expect(await chunked.exists(key)).toBe(false); // the chunked orphan went through gcEvict
    } finally {
      await chunked.close();
    }
  });
});
