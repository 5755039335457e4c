/**
 * Reading a chunked object (./format.ts): its manifest, then its chunks,
 * a bounded number in flight, copied into one preallocated Buffer (or handed
 * out one by one to a stream). A chunk that is gone (nil: the object was
 * updated, evicted or consumed since its manifest was read) is never mixed
 * with another version's: the read starts again or fails.
 *
 * @module
 */
import { ProxyResolveMissingKeyError, SerializationError } from '../errors.js';
import { CHUNKS_IN_FLIGHT, HEADER_FIELD, chunkField, isWrongType, parseManifest, type Manifest } from './format.js';
import type { ChunkIo } from './write.js';

/** A chunk the manifest names is gone: the object changed under the read. */
export class ChunkGone extends Error {}

/**
 * The manifest and header (field `h`) of the chunked object at `redisKey`,
 * in one round trip; undefined when the key is missing. Throws WRONGTYPE
 * (as Redis does) when the key holds a string now.
 */
export async function readManifest(io: ChunkIo, redisKey: string, key: string): Promise<{ manifest: Manifest; header: Buffer } | undefined> {
  const [m, h] = await io.command('HMGET', { key }, () => io.client.hmgetBuffer(redisKey, 'm', HEADER_FIELD));
  if (m === null || m === undefined) return undefined;
  const manifest = parseManifest(m);
  if (!manifest || !h) {
    throw new SerializationError(`the Redis hash at key ${key} is not a chunked object written by proxystore-redis (manifest ${JSON.stringify(m.toString('latin1').slice(0, 80))})`, { key });
  }
  return { manifest, header: h };
}

/** The length of chunk `i` of `manifest`. */
function chunkLength(manifest: Manifest, i: number): number {
  return i === manifest.count - 1 ? manifest.total - i * manifest.chunkSize : manifest.chunkSize;
}

/**
 * Bytes [from, to) of chunk `i` of `manifest` copied to `dest` at `at`, or
 * throws {@link ChunkGone}. Through the raw connection when it can (the
 * payload goes straight from the socket into `dest`), else through ioredis
 * (whose reply, nil, error or other length, is handled by {@link readChunk}).
 */
async function readChunkInto(io: ChunkIo, redisKey: string, key: string, manifest: Manifest, i: number, dest: Buffer, at: number, from: number, to: number): Promise<void> {
  if (io.raw) {
    let done: boolean;
    try {
      done = await io.raw.readInto(redisKey, chunkField(manifest.w, i), dest, at, from, to, chunkLength(manifest, i));
    } catch (err) {
      // No reply within the command timeout: typed as the ioredis path's timeout (not sent again).
      return io.command('HGET (chunk)', { key }, () => Promise.reject(err));
    }
    if (done) return;
  }
  const chunk = await readChunk(io, redisKey, key, manifest, i);
  chunk.copy(dest, at, from, to);
}

/** Chunk `i` of `manifest`, or throws {@link ChunkGone}. */
async function readChunk(io: ChunkIo, redisKey: string, key: string, manifest: Manifest, i: number): Promise<Buffer> {
  let chunk: Buffer | null;
  try {
    chunk = await io.command('HGET (chunk)', { key }, () => io.client.hgetBuffer(redisKey, chunkField(manifest.w, i)));
  } catch (err) {
    if (isWrongType(err)) throw new ChunkGone();
    throw err;
  }
  const want = chunkLength(manifest, i);
  if (chunk === null) throw new ChunkGone();
  if (chunk.length !== want) {
    throw new SerializationError(`chunk ${i} of key ${key} has ${chunk.length} bytes, its manifest says ${want}: not written by proxystore-redis`, { key });
  }
  return chunk;
}

/**
 * Bytes [start, end) of the object `manifest` describes, read chunk by
 * chunk (only the chunks the range needs, {@link CHUNKS_IN_FLIGHT} at a time)
 * into one Buffer. Throws {@link ChunkGone} when a chunk is gone.
 */
export async function readRange(io: ChunkIo, redisKey: string, key: string, manifest: Manifest, start = 0, end = manifest.total): Promise<Buffer> {
  const out = Buffer.allocUnsafe(end - start);
  if (end <= start) return out;
  const first = Math.floor(start / manifest.chunkSize);
  const last = Math.floor((end - 1) / manifest.chunkSize);
  let next = first;
  const worker = async (): Promise<void> => {
    while (next <= last) {
      const i = next++;
      const at = i * manifest.chunkSize;
      const from = Math.max(start, at);
      const to = Math.min(end, at + chunkLength(manifest, i));
      await readChunkInto(io, redisKey, key, manifest, i, out, from - start, from - at, to - at);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, last - first + 1) }, worker));
  return out;
}

/**
 * The whole stored bytes of the chunked object at `redisKey`, or undefined
 * when it is missing. A read that finds a chunk gone (an update swapped the
 * object) starts again from the manifest; `retries` times at most.
 */
export async function readChunked(io: ChunkIo, redisKey: string, key: string, retries = 3): Promise<Buffer | undefined> {
  for (let attempt = 0; ; attempt++) {
    const found = await readManifest(io, redisKey, key);
    if (!found) return undefined;
    try {
      return await readRange(io, redisKey, key, found.manifest);
    } catch (err) {
      if (!(err instanceof ChunkGone)) throw err;
      if (attempt >= retries) throw changedError(key);
    }
  }
}

/** The error of a read that kept finding the object changed under it. */
export function changedError(key: string): ProxyResolveMissingKeyError {
  return new ProxyResolveMissingKeyError(
    `key ${key} changed while its chunks were read (updated, evicted or consumed by another process): the bytes read so far were dropped; read it again`,
    { key },
  );
}

/**
 * The chunks of the object, one at a time as the consumer pulls (prefetching
 * up to `ahead` chunks; with the one the Readable of getStream keeps ready,
 * the consumer is at most two ahead), from byte `start`. Each chunk is a
 * fresh Buffer the consumer may keep; one ahead rather than two measured
 * 52-53 MB instead of 57-61 MB of RSS growth for a 1 GB getStream after a
 * putStream, at the same throughput (docs/large-objects.md). Throws ChunkGone's
 * {@link changedError} when a chunk is gone mid-way (bytes were handed out
 * already: the read cannot start again).
 */
export async function* streamChunks(io: ChunkIo, redisKey: string, key: string, manifest: Manifest, start: number, ahead = 1): AsyncGenerator<Buffer> {
  const pending: Promise<Buffer>[] = [];
  let next = Math.floor(start / manifest.chunkSize);
  const fill = () => {
    while (pending.length < ahead && next < manifest.count) {
      const i = next++;
      const want = chunkLength(manifest, i);
      const dest = Buffer.allocUnsafeSlow(want);
      const p = readChunkInto(io, redisKey, key, manifest, i, dest, 0, 0, want).then(() => dest);
      p.catch(() => undefined); // awaited below; never unhandled meanwhile
      pending.push(p);
    }
  };
  let first = true;
  try {
    while (true) {
      fill();
      const p = pending.shift();
      if (!p) return;
      let chunk: Buffer;
      try {
        chunk = await p;
      } catch (err) {
        if (err instanceof ChunkGone) throw changedError(key);
        throw err;
      }
      if (first) {
        first = false;
        const skip = start % manifest.chunkSize;
        if (skip > 0) chunk = chunk.subarray(skip);
      }
      yield chunk;
    }
  } finally {
    // Abandoned (consumer gone): no more chunks are asked for.
    pending.length = 0;
  }
}
