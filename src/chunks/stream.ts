/**
 * Byte reads of a Buffer (or typed array) value without decoding it:
 * `store.getStream` (a Readable, a chunk at a time as the consumer pulls)
 * and `store.getRange` (bytes [start, end), only the chunks they lie in).
 * Both work for chunked and non-chunked values (docs/large-objects.md).
 *
 * @module
 */
import { InvalidOptionsError, errorFromReply, type ProxyStoreError } from '../errors.js';
import { peekShape, rawPayloadStart } from '../serialize.js';
import { isWrongType } from './format.js';
import { ChunkGone, changedError, readManifest, readRange, streamChunks } from './read.js';
import type { ChunkIo } from './write.js';

/** What the byte reads need besides the connection. */
export interface ByteReadContext {
  io: ChunkIo;
  /** The Redis data key of `key`. */
  redisKey: string;
  key: string;
  /** The error for a missing key (it may say who consumed it). */
  missing: () => Promise<ProxyStoreError>;
}

/** The typed error for a value whose bytes cannot be read raw. */
function notBinary(key: string, header: Uint8Array): InvalidOptionsError {
  const shape = peekShape(header);
  return new InvalidOptionsError(
    `key ${key} holds ${shape ? `a value of shape ${shape}` : 'bytes not written by proxystore-redis'}, not a Buffer or typed array: ` +
      'getStream and getRange read the raw bytes of binary values only; read it with store.get',
    { key },
  );
}

/**
 * The raw bytes of the Buffer at `ctx.key`, a chunk at a time: the first is
 * read when the consumer first pulls, and at most two more are asked for
 * ahead of what the consumer took.
 */
export async function* streamBytes(ctx: ByteReadContext): AsyncGenerator<Buffer> {
  const { io, redisKey, key } = ctx;
  let bytes: Buffer | null;
  try {
    bytes = await io.command('GET', { key }, () => io.client.getBuffer(redisKey));
  } catch (err) {
    if (!isWrongType(err) && !isWrongType((err as { cause?: unknown }).cause)) throw errorFromReply(err, 'GET', { key });
    bytes = null;
    const found = await readManifest(io, redisKey, key);
    if (!found) throw await ctx.missing();
    const start = rawPayloadStart(found.header);
    if (start === undefined) throw notBinary(key, found.header);
    yield* streamChunks(io, redisKey, key, found.manifest, start);
    return;
  }
  if (bytes === null) throw await ctx.missing();
  const start = rawPayloadStart(bytes);
  if (start === undefined) throw notBinary(key, bytes);
  if (bytes.length > start) yield bytes.subarray(start);
}

function checkRange(key: string, start: unknown, end: unknown): void {
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!ok(start) || !ok(end) || end < start) {
    throw new InvalidOptionsError(
      `store.getRange(${JSON.stringify(key)}, ${String(start)}, ${String(end)}): start and end must be integers with 0 <= start <= end ` +
        '(bytes [start, end), end exclusive, as Buffer.subarray)',
      { key },
    );
  }
}

function outOfRange(key: string, start: number, end: number, length: number): InvalidOptionsError {
  return new InvalidOptionsError(
    `store.getRange(${JSON.stringify(key)}, ${start}, ${end}): the value is ${length} bytes, so end must be at most ${length} (bytes [start, end), end exclusive)`,
    { key },
  );
}

/**
 * Bytes [start, end) of the Buffer (or typed array's bytes) at `ctx.key`:
 * GETRANGE for a value stored whole; for a chunked one, its manifest and
 * only the chunks the range lies in.
 */
export async function readBytes(ctx: ByteReadContext, start: number, end: number): Promise<Buffer> {
  const { io, redisKey, key } = ctx;
  checkRange(key, start, end);
  for (let attempt = 0; ; attempt++) {
    let replies: [Error | null, unknown][] | null;
    try {
      // One round trip for a Buffer: header, length and the range (assuming
      // a Buffer's 3-byte header; a typed array's 8 bytes take a second).
      replies = await io.command('GETRANGE', { key }, () =>
        io.client.pipeline().getrangeBuffer(redisKey, 0, 7).strlen(redisKey).getrangeBuffer(redisKey, 3 + start, 3 + end - 1).exec(),
      );
    } catch (err) {
      throw errorFromReply(err, 'GETRANGE', { key });
    }
    const wrongType = replies?.some(([err]) => err && isWrongType(err));
    if (!wrongType) {
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw errorFromReply(failed?.[0] ?? new Error('pipeline discarded'), 'GETRANGE', { key });
      const header = replies[0]?.[1] as Buffer;
      const length = Number(replies[1]?.[1]);
      if (length === 0) throw await ctx.missing();
      const at = rawPayloadStart(header);
      if (at === undefined) throw notBinary(key, header);
      if (end > length - at) throw outOfRange(key, start, end, length - at);
      if (end === start) return Buffer.alloc(0);
      if (at === 3) return replies[2]?.[1] as Buffer;
      return io.command('GETRANGE', { key }, () => io.client.getrangeBuffer(redisKey, at + start, at + end - 1));
    }
    const found = await readManifest(io, redisKey, key).catch((err: unknown) => {
      if (isWrongType(err)) return 'again' as const;
      throw err;
    });
    if (found === 'again') continue;
    if (!found) throw await ctx.missing();
    const at = rawPayloadStart(found.header);
    if (at === undefined) throw notBinary(key, found.header);
    const length = found.manifest.total - at;
    if (end > length) throw outOfRange(key, start, end, length);
    try {
      return await readRange(io, redisKey, key, found.manifest, at + start, at + end);
    } catch (err) {
      if (!(err instanceof ChunkGone)) throw err;
      if (attempt >= 3) throw changedError(key);
    }
  }
}
