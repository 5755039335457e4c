/**
 * Keys of deduped objects (`dedupe: true`): `sha256.` followed by the
 * URL-safe base64 SHA-256 (43 characters) of the object's stored bytes, so
 * equal bytes get the same key in every process of a namespace. The key has
 * no `~`, so it is its own hash tag: every Redis key of the object (data,
 * references, finished calls) sits in one slot, derived from the hash.
 *
 * @module
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/** Node's one-shot `crypto.hash` (20.12+, a third of createHash's cost on a small value), else createHash. */
const oneShot: (algorithm: string, data: Uint8Array, encoding: 'base64url') => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (crypto as unknown as { hash: (a: string, d: Uint8Array, e: 'base64url') => string }).hash
    : (algorithm, data, encoding) => createHash(algorithm).update(data).digest(encoding);

/** What every deduped key starts with (also the hash's name). */
export const DEDUPE_PREFIX = 'sha256.';

const DEDUPE_KEY = /^sha256\.[A-Za-z0-9_-]{43}$/;

/** The store key of a deduped object whose stored bytes are `bytes`. */
export function dedupeKey(bytes: Uint8Array): string {
  return DEDUPE_PREFIX + oneShot('sha256', bytes, 'base64url');
}

/** A value to put deduped: its key, its size, and its stored bytes, made only when they are sent. */
export interface DedupeItem {
  key: string;
  size: number;
  bytes(): Buffer;
}

/**
 * The item of a value whose stored bytes are the concatenation of `parts`
 * (serializeParts): hashed part by part, so a large Buffer is not copied
 * unless its bytes have to be sent.
 */
export function dedupeItem(parts: readonly Uint8Array[]): DedupeItem {
  const only = parts.length === 1 && Buffer.isBuffer(parts[0]) ? parts[0] : undefined;
  if (only) return { key: dedupeKey(only), size: only.length, bytes: () => only };
  const hash = createHash('sha256');
  let size = 0;
  for (const part of parts) {
    hash.update(part);
    size += part.byteLength;
  }
  let bytes: Buffer | undefined;
  return { key: DEDUPE_PREFIX + hash.digest('base64url'), size, bytes: () => (bytes ??= Buffer.concat(parts, size)) };
}

/** Whether `key` is the key of a deduped object (no other key can look like one: random keys are 22 characters without a dot). */
export function isDedupeKey(key: string): boolean {
  return key.length === DEDUPE_PREFIX.length + 43 && DEDUPE_KEY.test(key);
}
