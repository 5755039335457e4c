/**
 * The command line's failures: one line on stderr, nothing on stdout, a
 * non-zero exit code, and soon (a wrong URL must not hang). Times include
 * starting Node with tsx, about a second.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { getFreePort } from '../../scripts/local-redis.js';
import { ROOT } from '../harness/child.js';
import { afterEach, describe, expect, test } from '../harness/store-fixture.js';
import { cli, type CliRun } from './util.js';

/** One line on stderr, nothing on stdout, that exit code. */
function expectFailure(run: CliRun, code: number, message: RegExp): void {
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^proxystore-redis: [^\n]+\n$/);
  expect(run.stderr).toMatch(message);
  expect(run.code).toBe(code);
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A TCP server on 127.0.0.1 that accepts connections and never answers. */
async function silentServer(): Promise<number> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const closeAll = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return closeAll(cb);
  };
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

describe('usage errors: exit code 2', () => {
  test('no namespace', async ({ redisUrl }) => {
    const run = await cli(['inspect', '--url', redisUrl]);
    expectFailure(run, 2, /no namespace: give --namespace NAME or set PROXYSTORE_REDIS_NAMESPACE/);
    expect(run.ms).toBeLessThan(10_000);
  });

  test('a namespace with a brace', async ({ redisUrl }) => {
    expectFailure(await cli(['gc', '-n', 'a{b}', '--url', redisUrl]), 2, /namespace "a\{b\}" contains a brace/);
  });

  test('an unknown option, command or a missing value', async () => {
    expectFailure(await cli(['inspect', '-n', 'x', '--frobnicate']), 2, /unknown option --frobnicate \(see proxystore-redis --help\)/);
    expectFailure(await cli(['purge', '-n', 'x']), 2, /unknown command "purge": use inspect or gc/);
    expectFailure(await cli([]), 2, /no command given/);
    expectFailure(await cli(['inspect', '--url']), 2, /--url needs a value/);
    expectFailure(await cli(['gc', '-n', 'x', '--older-than', 'soon']), 2, /--older-than takes a number of seconds >= 0, got "soon"/);
    expectFailure(await cli(['gc', '-n', 'x', '--limit', '3']), 2, /--limit is an option of inspect, not of gc/);
    expectFailure(await cli(['gc', '-n', 'x', '--yes', '--dry-run']), 2, /--dry-run and --yes contradict each other/);
  });

  test('a key that starts with "-" gets a hint to put it after --', async () => {
    expectFailure(await cli(['inspect', '-n', 'x', '-AbC']), 2, /a KEY that starts with '-' goes after --, as in: inspect -- -AbC/);
  });

  test('a URL that is not redis:// or rediss://', async () => {
    expectFailure(await cli(['inspect', '-n', 'x', '--url', 'http://127.0.0.1:6379']), 2, /--url must be a redis:\/\/ or rediss:\/\/ URL/);
  });
});

describe('Redis out of reach: exit code 1, within the timeout', () => {
  test('nothing listens on the port', async () => {
    const port = await getFreePort();
    const run = await cli(['inspect', '-n', 'x', '--url', `redis://127.0.0.1:${port}`]);
    expectFailure(run, 1, new RegExp(`cannot connect to Redis at 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    expect(run.ms).toBeLessThan(10_000);
  });

  test('a server that accepts and never answers: the connect deadline (--timeout)', async () => {
    const port = await silentServer();
    const run = await cli(['gc', '-n', 'x', '--url', `redis://127.0.0.1:${port}`, '--timeout', '1']);
    expectFailure(run, 1, new RegExp(`cannot connect to Redis at 127\\.0\\.0\\.1:${port} within 1 s`));
    expect(run.ms).toBeLessThan(10_000);
  });

  test('the default timeout is a few seconds, not forever', async () => {
    const port = await silentServer();
    const run = await cli(['inspect', '-n', 'x', '--url', `redis://127.0.0.1:${port}`]);
    expectFailure(run, 1, /within 5 s/);
    expect(run.ms).toBeLessThan(15_000);
  });

  test('the password of a URL never shows in a message', async () => {
    const port = await getFreePort();
    const run = await cli(['inspect', '-n', 'x', '--url', `redis://user:s3cret@127.0.0.1:${port}`]);
    expectFailure(run, 1, /cannot connect/);
    expect(run.stderr).not.toContain('s3cret');
    const bad = await cli(['inspect', '-n', 'x', '--url', 'http://user:s3cret@example']);
    expectFailure(bad, 2, /--url must be/);
    expect(bad.stderr).not.toContain('s3cret');
  });
});

describe('the environment and help', () => {
  test('PROXYSTORE_REDIS_URL and PROXYSTORE_REDIS_NAMESPACE stand in for --url and --namespace', async ({ redisUrl, namespace }) => {
    const run = await cli(['inspect'], { PROXYSTORE_REDIS_URL: redisUrl, PROXYSTORE_REDIS_NAMESPACE: namespace });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Namespace ${namespace} on redis://`);
  });

  test('--help and help COMMAND print usage on stdout, exit code 0', async () => {
    const main = await cli(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/^Usage: proxystore-redis <command> \[options\]/);
    expect(main.stdout).toContain('Exit codes: 0 done, 1 failed');
    const gc = await cli(['gc', '--help']);
    expect(gc.stdout).toMatch(/^Usage: proxystore-redis gc /);
    expect((await cli(['help', 'inspect'])).stdout).toMatch(/^Usage: proxystore-redis inspect /);
    expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('output', () => {
  test.override({ allowLeftovers: true });

  test('a reader that goes away (| head) ends the run quietly, not with an EPIPE trace', async ({ store, redisUrl, namespace }) => {
    await store.putBatch(Array.from({ length: 3000 }, (_, i) => i));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'gc', '-n', namespace, '--url', redisUrl], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
