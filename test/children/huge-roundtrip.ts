/**
 * Puts one Buffer of argv[2] bytes (default 1.5 GB) with a default Store on
 * the Redis at REDIS_URL, gets it back and compares SHA-256 digests, so that
 * this process holds at most one copy of the input and one of the output at
 * a time (the input is dropped before the get). The bytes are deterministic:
 * 64 KiB blocks, block i filled with (i * 31 + 7) & 255 and starting with i
 * (a block out of place, lost or repeated changes the digest).
 *
 * Prints one JSON line: { bytes, put, got, dataKeyType, keysAfterEvict }.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';

const size = Number(process.argv[2] ?? 1.5 * 1024 ** 3);
const url = process.env[CHILD_ENV.redisUrl] as string;
const namespace = process.env[CHILD_ENV.namespace] as string;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const BLOCK = 64 * 1024;
function payload(bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  for (let i = 0, at = 0; at < bytes; i++, at += BLOCK) {
    const end = Math.min(at + BLOCK, bytes);
    buf.fill((i * 31 + 7) & 255, at, end);
    if (end - at >= 4) buf.writeUInt32LE(i, at);
  }
  return buf;
}

const store = new Store('huge', new RedisConnector({ url, namespace }));
const raw = new Redis(url);
let input: Buffer | undefined = payload(size);
const put = createHash('sha256').update(input).digest('hex');
const key = await store.put(input);
input = undefined;
gc();
const dataKeyType = await raw.type(store.connector.dataKey(key));
let output = await store.get<Buffer>(key);
const got = output ? createHash('sha256').update(output).digest('hex') : null;
const bytes = output?.length ?? null;
output = undefined;
gc();
await store.evict(key);
const keysAfterEvict = (await raw.keys(`${namespace}:*`)).filter((k) => !k.startsWith(`${namespace}:generation:`));
await store.close();
raw.disconnect();
console.log(JSON.stringify({ bytes, put, got, dataKeyType, keysAfterEvict }));
