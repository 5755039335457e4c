/**
 * The stored form of a chunked object (docs/large-objects.md).
 *
 * An object whose stored bytes exceed the store's `chunkSize` is a Redis
 * HASH at its data key `<ns>:{<tag>}:d:<key>` instead of a string:
 *
 *     m         the manifest: '1:<total bytes>:<chunk count>:<chunk size>:<write id>'
 *     h         the first (up to 8) stored bytes: the header, for range reads
 *     <w>:<i>   chunk i (0-based) of the write whose id is w; every chunk
 *               is <chunk size> bytes but the last
 *
 * The write id is random per write: an update writes a new set of chunks
 * under a new id and swaps the whole hash in one script, so a reader that
 * asks for chunk i of the id it read gets nil after the swap, never a chunk
 * of another version.
 *
 * @module
 */
import { InvalidOptionsError } from '../errors.js';

/** Manifest format version (the first field). */
export const CHUNK_FORMAT = 1;
/** The smallest `chunkSize` a store takes. */
export const MIN_CHUNK_SIZE = 1024;
/** The largest `chunkSize` a store takes (Redis's default proto-max-bulk-len). */
export const MAX_CHUNK_SIZE = 512 * 1024 * 1024;
/**
 * Default `chunkSize`, from a measurement of put + get of a 64 MB Buffer
 * against raw SET + GET on a local Redis (docs/large-objects.md).
 */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
/** Chunks a writer or reader keeps in flight (memory: about this many chunks). */
export const CHUNKS_IN_FLIGHT = 4;
/**
 * TTL of a staging hash, renewed by every chunk written to it: a writer that
 * dies leaves nothing for longer, and a producer stream may pause this long
 * between two chunks.
 */
export const STAGE_TTL_MS = 120_000;

/** A chunked object's manifest. */
export interface Manifest {
  /** Stored bytes in all (header included). */
  total: number;
  /** How many chunks. */
  count: number;
  /** Bytes per chunk (the last may be shorter). */
  chunkSize: number;
  /** The write id: chunk i is field `<w>:<i>`. */
  w: string;
  /** The manifest as stored (field `m`). */
  text: string;
}

/** The manifest of a write of `total` bytes in chunks of `chunkSize` bytes. */
export function makeManifest(total: number, chunkSize: number, w: string): Manifest {
  const count = Math.ceil(total / chunkSize);
  return { total, count, chunkSize, w, text: `${CHUNK_FORMAT}:${total}:${count}:${chunkSize}:${w}` };
}

/** Parse a stored manifest; undefined when it is not one. */
export function parseManifest(stored: Buffer | string | null | undefined): Manifest | undefined {
  if (stored === null || stored === undefined) return undefined;
  const text = typeof stored === 'string' ? stored : stored.toString('latin1');
  const m = /^1:(\d{1,16}):(\d{1,10}):(\d{1,10}):([\w-]{1,64})$/.exec(text);
  if (!m) return undefined;
  const total = Number(m[1]);
  const count = Number(m[2]);
  const chunkSize = Number(m[3]);
  if (chunkSize < 1 || count !== Math.ceil(total / chunkSize)) return undefined;
  return { total, count, chunkSize, w: m[4] as string, text };
}

/** The hash field of chunk `i` of write `w`. */
export function chunkField(w: string, i: number): string {
  return `${w}:${i}`;
}

/** The hash field holding the first stored bytes (the serialization header). */
export const HEADER_FIELD = 'h';
/** How many stored bytes field `h` holds (the longest header, a typed array's). */
export const HEADER_BYTES = 8;

/** Whether a Redis error is WRONGTYPE (a GET of a chunked object's hash). */
export function isWrongType(err: unknown): boolean {
  return err instanceof Error && /WRONGTYPE/.test(err.message);
}

/** Check a store's `chunkSize` option. */
export function checkChunkSize(value: unknown): number {
  if (value === undefined) return DEFAULT_CHUNK_SIZE;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_CHUNK_SIZE || value > MAX_CHUNK_SIZE) {
    throw new InvalidOptionsError(
      `chunkSize must be an integer number of bytes from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${typeof value === 'number' ? value : typeof value}`,
    );
  }
  return value;
}
