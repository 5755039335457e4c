/**
 * Writing a chunked object: its chunks go to a staging hash in the object's
 * slot (pipelined, a bounded number in flight), then one script commits
 * them (renames the hash onto the data key with the object's rules). See
 * ./format.ts and docs/large-objects.md.
 *
 * @module
 */
import { Readable, finished } from 'node:stream';
import type { Cluster, Redis } from 'ioredis';
import { RedisOperationError, errorFromReply, type ErrorContext } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { randomId } from '../keys.js';
import type { RawTransfers } from '../redis/raw.js';
import { CHUNKS_IN_FLIGHT, HEADER_BYTES, HEADER_FIELD, STAGE_TTL_MS, chunkField, makeManifest, type Manifest } from './format.js';

/** What the chunk code needs of a connector (a narrow view of RedisConnector). */
export interface ChunkIo {
  readonly client: Redis | Cluster;
  readonly keys: KeySpace;
  /** A command sent again while a Redis Cluster reconfigures; errors classified. */
  command<T>(operation: string, context: ErrorContext, send: () => Promise<T>): Promise<T>;
  /** The raw chunk connections (src/redis/raw.ts), tried before ioredis; none: ioredis only. */
  readonly raw?: RawTransfers | undefined;
}

/** Bytes a writer may take: parts of any size, in order, sync or async. */
export type ByteSource = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The parts of a byte source as they were produced. A `Readable` (not in
 * object mode, no encoding) is read with 'data' events, paused while a part
 * waits: its async iterator (`readable.read()`) joins whatever is buffered
 * into one new Buffer, which cost a 1 GB putStream of 1 MB parts 344 MB of
 * copies (garbage the process holds until V8 collects it). Ends, errors and
 * premature closes are reported as the async iterator does; leaving early
 * destroys the stream, as the async iterator does.
 */
export function partsOf(source: ByteSource): ByteSource {
  if (!(source instanceof Readable) || source.readableObjectMode || source.readableEncoding !== null) return source;
  return dataEvents(source);
}

async function* dataEvents(readable: Readable): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let ended: { error?: unknown } | undefined;
  let wake: (() => void) | undefined;
  const onData = (part: Uint8Array) => {
    queue.push(part);
    readable.pause();
    wake?.();
  };
  readable.on('data', onData);
  const cleanup = finished(readable, (err) => {
    ended = err ? { error: err } : {};
    wake?.();
  });
  try {
    for (;;) {
      const part = queue.shift();
      if (part !== undefined) {
        yield part;
        continue;
      }
      if (ended) {
        if (ended.error !== undefined) throw ended.error;
        return;
      }
      readable.resume();
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    readable.off('data', onData);
    cleanup();
    if (!ended) readable.destroy();
  }
}

/**
 * The chunk buffers of one {@link rechunk}, by their memory: a chunk the
 * writer is done with (written and acknowledged) is handed back with
 * {@link recycle} and filled again, so a stream of any length cut into
 * chunks costs a few chunk buffers, not a fresh one per chunk (garbage that
 * V8 collects late and the allocator keeps: tens of MB of RSS per GB).
 */
const spares = new WeakMap<ArrayBufferLike, Buffer[]>();

/**
 * Chunks copied from a stream's parts (each in a buffer of its own) a writer
 * keeps in flight: with the one being filled, the stream's buffers are this
 * many chunks plus one (measured in docs/large-objects.md).
 */
export const COPIED_IN_FLIGHT = 2;

/** Hand a chunk from {@link rechunk} back to be filled again (nothing else may use it after). */
export function recycle(chunk: Buffer): void {
  const free = spares.get(chunk.buffer);
  if (free && chunk.byteOffset === 0 && free.length < CHUNKS_IN_FLIGHT) free.push(Buffer.from(chunk.buffer));
}

/**
 * Cut `parts` into chunks of exactly `chunkSize` bytes (the last may be
 * shorter). A chunk that lies within one part is a view of it, not a copy;
 * only chunks that span parts are copied (into a chunk buffer of this
 * rechunk's own, fresh or handed back by {@link recycle}).
 */
export async function* rechunk(parts: ByteSource, chunkSize: number): AsyncGenerator<Buffer> {
  const free: Buffer[] = [];
  const fresh = (): Buffer => {
    const buf = Buffer.allocUnsafeSlow(chunkSize);
    spares.set(buf.buffer, free);
    return buf;
  };
  let pending: Buffer | undefined;
  let filled = 0;
  for await (const raw of parts as AsyncIterable<Uint8Array>) {
    if (!(raw instanceof Uint8Array)) {
      throw new TypeError(`a byte stream must give Buffers or Uint8Arrays, got ${raw === null ? 'null' : typeof raw} (a stream in object or string mode?)`);
    }
    const part = asBuffer(raw);
    let offset = 0;
    while (offset < part.length) {
      if (filled === 0 && part.length - offset >= chunkSize) {
        yield part.subarray(offset, offset + chunkSize);
        offset += chunkSize;
        continue;
      }
      pending ??= free.pop() ?? fresh();
      const n = Math.min(chunkSize - filled, part.length - offset);
      part.copy(pending, filled, offset, offset + n);
      filled += n;
      offset += n;
      if (filled === chunkSize) {
        yield pending;
        pending = undefined;
        filled = 0;
      }
    }
  }
  if (pending && filled > 0) yield pending.subarray(0, filled);
}

/**
 * Write `chunks` (from {@link rechunk}) to the staging hash of a new write
 * of `key`, at most {@link CHUNKS_IN_FLIGHT} in flight: the source is pulled
 * only as chunks are acknowledged, so a stream's memory stays bounded. Each
 * chunk renews the hash's TTL ({@link STAGE_TTL_MS}). Returns the manifest
 * and the staging key; on any failure (the source's error, or Redis's) the
 * staging hash is unlinked (or expires) and the error is thrown.
 */
export async function stageChunks(
  io: ChunkIo,
  key: string,
  chunks: AsyncIterable<Buffer>,
  chunkSize: number,
): Promise<{ manifest: Manifest; stage: string }> {
  const w = randomId();
  const stage = io.keys.stageKey(key, w);
  const inFlight = new Set<Promise<void>>();
  let failed: { error: unknown } | undefined;
  let total = 0;
  let index = 0;
  const send = async (chunk: Buffer, i: number): Promise<void> => {
    const field = chunkField(w, i);
    const header = i === 0 ? chunk.subarray(0, HEADER_BYTES) : undefined;
    // The raw connection first (no copy of the chunk); the same commands
    // through ioredis when it cannot (its replies handled as ever). Both are
    // safe to run again: HSET of the same bytes, PEXPIRE, the MULTI below.
    if (io.raw) {
      let done: boolean;
      try {
        done = await io.raw.writeChunk(stage, field, chunk, header, STAGE_TTL_MS);
      } catch (err) {
        // No reply within the command timeout: typed as the ioredis path's timeout (not sent again).
        return io.command('HSET (chunk)', { key }, () => Promise.reject(err));
      }
      if (done) return;
    }
    return sendIoredis(chunk, field, header);
  };
  const sendIoredis = (chunk: Buffer, field: string, header: Buffer | undefined): Promise<void> => {
    if (!header) {
      // The hash has its TTL from the first chunk; each later chunk renews
      // it (for a slow producer) with a PEXPIRE sent right behind its HSET
      // (no MULTI needed: this PEXPIRE only renews).
      return io.command('HSET (chunk)', { key }, async () => {
        await Promise.all([io.client.hset(stage, field, chunk), io.client.pexpire(stage, STAGE_TTL_MS)]);
      });
    }
    // The first chunk creates the hash: with its TTL, atomically (MULTI), so
    // a writer that dies leaves nothing without a TTL.
    return io.command('HSET (chunk)', { key }, async () => {
      const replies = await io.client
        .multi()
        .hset(stage, field, chunk, HEADER_FIELD, header)
        .pexpire(stage, STAGE_TTL_MS)
        .exec()
        .catch((err: unknown) => {
          // EXECABORT: the reason is the queued command's own error (an OOM refusal, ...).
          const previous = (err as { previousErrors?: unknown[] }).previousErrors;
          throw previous?.[0] ?? err;
        });
      if (!replies) throw new RedisOperationError(`Redis MULTI (chunk) of key ${key} was aborted`, { key });
      for (const [err] of replies) if (err) throw err;
    });
  };
  try {
    for await (const chunk of chunks) {
      if (failed) break;
      const sent = send(chunk, index).then(
        () => {
          inFlight.delete(sent);
          // Acknowledged: its bytes are in Redis (a failed chunk's buffer is never reused).
          recycle(chunk);
        },
        (error: unknown) => {
          inFlight.delete(sent);
          failed ??= { error };
        },
      );
      inFlight.add(sent);
      total += chunk.length;
      index++;
      // (No wait after the first chunk: the commands of one hash go on one
      // connection, in order, so its MULTI creates the hash, with its TTL,
      // before any later chunk's HSET is run.)
      // A chunk copied from a stream's parts holds a buffer of its own until
      // acknowledged: fewer of those in flight (see COPIED_IN_FLIGHT).
      if (inFlight.size >= (spares.has(chunk.buffer) ? COPIED_IN_FLIGHT : CHUNKS_IN_FLIGHT)) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failed) throw errorFromReply(failed.error, 'HSET (chunk)', { key });
  } catch (err) {
    await Promise.all(inFlight);
    await unlinkQuietly(io, stage);
    throw err;
  }
  return { manifest: makeManifest(total, chunkSize, w), stage };
}

/**
 * Unlink a key, best effort (it has a TTL anyway): resolves once Redis
 * answered or the command failed. Failure paths await it, so that a call
 * that rejected has left nothing behind by then (another connection's read
 * right after the rejection could otherwise still see the key).
 */
export async function unlinkQuietly(io: ChunkIo, redisKey: string): Promise<void> {
  await io.client.unlink(redisKey).catch(() => undefined);
}
