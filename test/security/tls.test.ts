/**
 * A store over TLS: a throwaway CA and server certificate made with openssl,
 * a redis-server that serves TLS only (`--port 0 --tls-port P`), and a
 * store on `rediss://127.0.0.1:P` with `redisOptions: { tls: { ca } }`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { ping, startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { RedisConnector, RedisOperationError, Store, fromRef, resolve, toRef } from '../../src/index.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from '../harness/fixtures.js';

const run = promisify(execFile);

let dir: string;
let server: LocalRedis;
let ca: Buffer;

/** A CA and a server certificate for 127.0.0.1 signed by it (EC P-256: quick to make). */
async function makeCertificates(into: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const file = (name: string) => join(into, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=proxystore-redis test CA']);
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await run('openssl', [
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.crt'), '-days', '1', '-extfile', file('san.cnf'),
  ]);
  return { caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key') };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxystore-tls-'));
  const files = await makeCertificates(dir);
  ca = await readFile(files.caFile);
  server = await startRedisServer({ tls: files });
});

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function tlsStore(namespace: string, tls: Record<string, unknown> = { ca }): Store {
  const store = new Store(`tls-${namespace}`, new RedisConnector({
    url: server.url,
    namespace,
    // No endless reconnecting in the test that expects the handshake to fail.
    redisOptions: { tls, maxRetriesPerRequest: 0, retryStrategy: () => null },
  }), { register: true });
  onTestFinished(async () => {
    await store.close();
  });
  return store;
}

describe('a store over TLS', () => {
  test('the server speaks TLS only: its URL is rediss:// and a plain-text PING gets no answer', async () => {
    expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
    expect(await ping(server.host, server.port)).toBe(false);
  });

  test('the connection is a verified TLS socket', async ({ namespace }) => {
    const store = tlsStore(namespace);
    await store.connector.client.ping();
    const socket = (store.connector.client as Redis).stream;
    expect(socket).toBeInstanceOf(TLSSocket);
    expect((socket as TLSSocket).authorized).toBe(true);
    expect((socket as TLSSocket).getProtocol()).toMatch(/^TLSv1\.[23]$/);
  });

  test('put, get, exists and evict work', async ({ namespace }) => {
    const store = tlsStore(namespace);
    const key = await store.put({ over: 'tls', n: 2n ** 70n });
    expect(await store.exists(key)).toBe(true);
    expect(await store.get(key)).toEqual({ over: 'tls', n: 2n ** 70n });
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('putBatch and proxies resolved from refs work', async ({ namespace }) => {
    const store = tlsStore(namespace);
    const keys = await store.putBatch([[1], [2]]);
    const p = await store.proxyFromKey<number[]>(keys[1]!);
    expect(await resolve(fromRef<number[]>(toRef(p)))).toEqual([2]);
    for (const k of keys) await store.evict(k);
  });

  test('chunked values go over a raw chunk connection that is TLS too (verified with the same CA), byte for byte', async ({ namespace }) => {
    const store = tlsStore(namespace);
    const small = new Store(`tls-chunks-${namespace}`, store.connector, { chunkSize: 1024, cacheSize: 0 });
    const value = randomBytes(40 * 1024 + 3);
    const key = await small.put(value);
    expect(Buffer.compare((await small.get<Buffer>(key)) as Buffer, value)).toBe(0);
    const streamed = await small.putStream(Readable.from([value.subarray(0, 5000), value.subarray(5000)]));
    const parts: Buffer[] = [];
    for await (const part of small.getStream(streamed)) parts.push(part as Buffer);
    expect(Buffer.compare(Buffer.concat(parts), value)).toBe(0);
    expect(store.connector.raw.stats.raw).toBeGreaterThan(4 * 40);
    expect(store.connector.raw.stats.fallbacks).toBe(0);
    await small.evict(key);
    await small.evict(streamed);
    await small.close({ closeConnector: false });
  });

  test('a raw chunk connection that fails its TLS handshake (no CA given): the chunks go through ioredis', async ({ namespace }) => {
    const store = tlsStore(namespace);
    const small = new Store(`tls-chunks-${namespace}`, store.connector, { chunkSize: 1024, cacheSize: 0 });
    // ioredis is connected (verified with the CA); the raw connection is then made with a CA that signed nothing here.
    await store.connector.client.ping();
    (store.connector.client as Redis).options.tls = { ca: [] as unknown as Buffer };
    const value = randomBytes(10 * 1024);
    const key = await small.put(value);
    expect(Buffer.compare((await small.get<Buffer>(key)) as Buffer, value)).toBe(0);
    expect(store.connector.raw.stats.raw).toBe(0);
    expect(store.connector.raw.stats.fallbacks).toBeGreaterThan(0);
    await small.evict(key);
    await small.close({ closeConnector: false });
  });

  test('an ephemeral proxy is consumed once (the Lua script runs over TLS)', async ({ namespace }) => {
    const store = tlsStore(namespace);
    const ref = toRef(await store.proxy('once', { evict: true }));
    expect(await resolve(fromRef(ref))).toBe('once');
    await expect(resolve(fromRef(ref))).rejects.toThrow(/consumed by pid/);
  });

  test('without the CA the handshake fails: the client\'s error event names the certificate problem, the put fails', async ({ namespace }) => {
    const store = tlsStore(namespace, {});
    const errors: Error[] = [];
    store.connector.client.on('error', (e: Error) => errors.push(e));
    const err = await store.put('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect(errors[0]?.message).toMatch(/self-signed certificate in certificate chain/);
  });
});
