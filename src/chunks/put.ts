/**
 * Puts of chunked objects: stage the chunks (./write.ts), then commit them
 * with lua/chunkCommit.lua, or with the script of the put's rules
 * (includes/writeData.lua), which receives the staging key and manifest.
 *
 * @module
 */
import type { Scripts } from '../redis/scripts.js';
import { outcomeUnknown } from '../redis/faults.js';
import { LifetimeEndedError, errorFromReply } from '../errors.js';
import { rechunk, stageChunks, unlinkQuietly, type ByteSource, type ChunkIo } from './write.js';
import { DEFAULT_CHUNK_SIZE, type Manifest } from './format.js';

/** A connector as the chunked puts need it. */
export interface ChunkWriter extends ChunkIo {
  readonly scripts: Scripts;
  dataKey(key: string): string;
  /** The largest value the server takes (its proto-max-bulk-len, learned once per connection). */
  maxValueBytes(): Promise<number>;
}

/**
 * The bytes of a stream (putStream) handed to a put path that takes values:
 * staged, whatever their size, as the path stages a large value. A stream is
 * read once: a second staging (a StaticLifetime retrying its put on a new
 * part) is refused.
 */
export class StreamValue {
  private used = false;
  constructor(private readonly source: ByteSource) {}

  /** The source: once for a stream; parts in memory (an array) may be taken again. */
  take(): ByteSource {
    if (this.used && !Array.isArray(this.source)) {
      throw new LifetimeEndedError(
        'the lifetime part this stream was being stored under ended meanwhile, and a stream cannot be read twice: nothing was stored; put it again',
      );
    }
    this.used = true;
    return this.source;
  }
}

/** A value a put path takes: its stored bytes, or a stream of them. */
export type PutValue = Buffer | StreamValue;

/** A staged write: where its chunks wait, and their manifest. */
export interface Staged {
  stage: string;
  manifest: Manifest;
}

/**
 * Stage the bytes of `source` (stored bytes, header included) for a new
 * write of `key`, in chunks of `chunkSize` bytes, or of the server's
 * proto-max-bulk-len when that is smaller (a larger chunk would be refused,
 * and Redis closes the connection on it).
 */
export async function stage(io: ChunkWriter, key: string, source: ByteSource, chunkSize: number): Promise<Staged> {
  const size = Math.min(chunkSize, await io.maxValueBytes());
  return stageChunks(io, key, rechunk(source, size), size);
}

/**
 * Store `source` under the fresh `key` as a chunked object with no rules
 * record (a plain put; with `ttlMs`, it expires then). On failure nothing is
 * left: the staging hash is unlinked (or expires), and a commit whose reply
 * was lost is undone (the key is fresh: nobody else knows it).
 */
export async function putChunked(io: ChunkWriter, key: string, source: ByteSource, chunkSize: number, ttlMs: number | undefined): Promise<void> {
  const staged = await stage(io, key, source, chunkSize);
  await commitStaged(io, key, staged, (s) =>
    io.scripts.run('chunkCommit', { data: io.dataKey(key), stage: s.stage }, { manifest: s.manifest.text, ttlMs: ttlMs ?? 0 }, { key }),
  );
}

/**
 * Run `commit` (a script that renames the staging hash onto the data key);
 * on failure, the staging hash is unlinked, and so is the data key of a
 * `fresh` key (nobody else knows it) when the commit may have run.
 */
export async function commitStaged<T>(io: ChunkWriter, key: string, staged: Staged, commit: (staged: Staged) => Promise<T>, fresh = true): Promise<T> {
  try {
    return await commit(staged);
  } catch (err) {
    await unlinkQuietly(io, staged.stage);
    const error = errorFromReply(err, 'chunkCommit', { key });
    if (fresh && (outcomeUnknown(err) || outcomeUnknown(error))) await unlinkQuietly(io, io.dataKey(key));
    throw error;
  }
}

/**
 * Stage every value of `values` over `chunkSize` (for the new keys `keys`),
 * all at once; the others are left undefined (sent in ARGV). On a failure
 * the stages made are unlinked and the error thrown.
 */
export async function stageLarge(
  io: ChunkWriter,
  keys: readonly string[],
  values: readonly (Uint8Array | StreamValue)[],
  chunkSize: number | undefined,
): Promise<(Staged | undefined)[]> {
  const large = (v: Uint8Array | StreamValue): boolean => v instanceof StreamValue || (chunkSize !== undefined && v.byteLength > chunkSize);
  if (!values.some(large)) return values.map(() => undefined);
  const size = chunkSize ?? DEFAULT_CHUNK_SIZE;
  const outcomes = await Promise.allSettled(
    values.map((v, i) =>
      large(v) ? Promise.resolve().then(() => stage(io, keys[i] as string, v instanceof StreamValue ? v.take() : [v], size)) : Promise.resolve(undefined),
    ),
  );
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) {
    await Promise.all(outcomes.map((o) => (o.status === 'fulfilled' && o.value ? unlinkQuietly(io, o.value.stage) : undefined)));
    throw failed.reason;
  }
  return outcomes.map((o) => (o as PromiseFulfilledResult<Staged | undefined>).value);
}

/** Unlink the staging hashes of `staged` (after a failed commit), best effort; resolves when done. */
export async function dropStaged(io: ChunkWriter, staged: readonly (Staged | undefined)[]): Promise<void> {
  await Promise.all(staged.map((s) => (s ? unlinkQuietly(io, s.stage) : undefined)));
}

/**
 * How a script that writes one object's bytes gets them: in ARGV (`value`
 * the bytes, `stage` the data key itself) when they fit in `chunkSize`, else
 * staged first (`value` the manifest, `stage` the staging hash, `staged` to
 * drop after a failed call).
 */
export async function scriptValue(
  io: ChunkWriter,
  key: string,
  bytes: Buffer | readonly Uint8Array[],
  chunkSize: number,
): Promise<{ stage: string; value: Buffer | string; staged?: Staged }> {
  const size = Buffer.isBuffer(bytes) ? bytes.length : bytes.reduce((n, p) => n + p.byteLength, 0);
  if (size <= chunkSize) return { stage: io.dataKey(key), value: Buffer.isBuffer(bytes) ? bytes : Buffer.concat(bytes) };
  const staged = await stage(io, key, Buffer.isBuffer(bytes) ? [bytes] : bytes, chunkSize);
  return { stage: staged.stage, value: staged.manifest.text, staged };
}
