/**
 * examples/large-file-http.ts: a file streamed into the store and out to an
 * HTTP response. Run as it is (its own process, the test's Redis and
 * namespace: a 64 MB file, downloaded and checked); and its pieces here, on a
 * store with a small chunkSize: whole downloads, a Range request, a missing
 * key (404), and a client that hangs up mid-body (the object stays whole).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ENV_NAMESPACE, ENV_URL, RedisConnector, Store } from '../../src/index.js';
import { download, serve, upload, writeSampleFile } from '../../examples/large-file-http.js';
import { runChild } from '../harness/child.js';
import { connectionOptions, expect, test as base } from '../harness/store-fixture.js';

const test = base.extend('served', async ({ target, namespace }, { onCleanup }) => {
  const store = new Store(`large-file-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { chunkSize: 64 * 1024 });
  const server: Server = serve(store);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const dir = await mkdtemp(join(tmpdir(), 'large-file-test-'));
  onCleanup(async () => {
    await new Promise((ok) => server.close(ok));
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { port } = server.address() as { port: number };
  return { store, dir, url: (key: string) => `http://127.0.0.1:${port}/objects/${encodeURIComponent(key)}` };
});

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

test('the example runs: a 64 MB file goes to Redis and back out over HTTP, same SHA-256', { timeout: 120_000 }, async ({ redisUrl, namespace }) => {
  const out = await runChild('examples/large-file-http.ts', { env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace }, timeoutMs: 100_000 });
  expect(out.code, out.stderr).toBe(0);
  const lines = out.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^stored 67108864 bytes from \S+sample\.bin as \S+$/);
  expect(lines[1]).toBe('downloaded 67108864 bytes over HTTP: same SHA-256 as the file');
});

test('downloads whole, by range, 404 for a missing key', { timeout: 60_000 }, async ({ served }) => {
  const path = join(served.dir, 'f.bin');
  const size = 20 * 64 * 1024 + 4321;
  await writeSampleFile(path, size);
  const key = await upload(served.store, path, 600);

  const whole = await download(served.url(key));
  expect(whole).toMatchObject({ status: 200, bytes: size, sha256: await sha256File(path) });

  const [first, last] = [64 * 1024 - 10, 3 * 64 * 1024 + 9];
  const part = await download(served.url(key), `bytes=${first}-${last}`);
  const expected = createHash('sha256');
  await pipeline(createReadStream(path, { start: first, end: last }), expected);
  expect(part).toMatchObject({ status: 206, bytes: last - first + 1, sha256: expected.digest('hex') });
  expect(part.headers['content-range']).toBe(`bytes ${first}-${last}/*`);

  expect((await download(served.url('no-such-key'))).status).toBe(404);
  await served.store.evict(key);
  expect((await download(served.url(key))).status).toBe(404);
});

test('a client that hangs up mid-body leaves the object whole for the next one', { timeout: 60_000 }, async ({ served }) => {
  const path = join(served.dir, 'g.bin');
  const size = 40 * 64 * 1024;
  await writeSampleFile(path, size);
  const key = await upload(served.store, path, 600);
  await new Promise<void>((ok, ko) => {
    const req = get(served.url(key), (res) => {
      res.once('data', () => {
        req.destroy();
        ok();
      });
    });
    req.once('error', (err) => ((err as { code?: string }).code === 'ECONNRESET' ? ok() : ko(err)));
  });
  expect(await download(served.url(key))).toMatchObject({ status: 200, bytes: size, sha256: await sha256File(path) });
  await served.store.evict(key);
});
