import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RedisConnector, Store } from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { chunkSize: 4 * 1024 * 1024 }); // the default: a value over 4 MB is stored as chunks

// Any size: put writes the chunks pipelined, get reads them into one preallocated Buffer.
const big = Buffer.alloc(20 * 1024 * 1024, 7);
const key = await store.put(big);
assert.ok((await store.get<Buffer>(key))?.equals(big));

// A slice (end exclusive) reads only the chunks it lies in.
assert.ok((await store.getRange(key, 5_000_000, 5_000_010)).equals(big.subarray(5_000_000, 5_000_010)));

// Streams in and out: memory stays a few chunks, whatever the size.
const dir = await mkdtemp(join(tmpdir(), 'large-'));
await writeFile(join(dir, 'in.bin'), big);
const fromFile = await store.putStream(createReadStream(join(dir, 'in.bin')), { ttl: 3600 });
await pipeline(store.getStream(fromFile), createWriteStream(join(dir, 'out.bin')));
assert.ok((await readFile(join(dir, 'out.bin'))).equals(big));

await store.evict(key);
await store.evict(fromFile);
await rm(dir, { recursive: true });
await store.close();
