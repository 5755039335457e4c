/**
 * Who consumed an ephemeral object: recorded in a short-lived tombstone by
 * the consume script, read back to explain a later
 * `ProxyResolveMissingKeyError` ("consumed by pid 4242 on host-a 1.3 s ago
 * at worker.ts:17").
 *
 * @module
 */
import { hostname } from 'node:os';
import type { ConsumedBy } from './errors.js';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The library's own directory (src/ or dist/), whose frames are skipped. */
const LIBRARY_DIR = dirname(fileURLToPath(import.meta.url));
const HOST = hostname();

/** Describes the consumer. */
export interface ConsumerInfo {
  pid: number;
  host: string;
  /** First stack frame outside the library, e.g. `/app/worker.ts:17:9`. */
  frame?: string;
}

/**
 * The caller's first stack frame outside this library and Node internals.
 * Every consume sends it, and formatting a frame is the costly part of a
 * stack capture (with source maps on, about 2 µs a frame): the library is a
 * few frames deep, so 10 frames are formatted first, and 30 only when those
 * are all the library's or Node's.
 */
export function callerFrame(): string | undefined {
  return firstOutside(10) ?? firstOutside(30);
}

function firstOutside(depth: number): string | undefined {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = depth;
  Error.captureStackTrace(holder, callerFrame);
  Error.stackTraceLimit = limit;
  for (const line of (holder.stack ?? '').split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^\s()]+:\d+:\d+)\)?\s*$/.exec(line.trim());
    if (!m) continue;
    const location = (m[1] as string).replace(/^file:\/\//, '');
    if (location.startsWith('node:') || location.includes('/node_modules/')) continue;
    if (location.startsWith(LIBRARY_DIR)) continue;
    return location;
  }
  return undefined;
}

/** JSON for the tombstone. */
export function describeConsumer(frame: string | undefined): string {
  const info: ConsumerInfo = { pid: process.pid, host: HOST };
  // The consume script takes at most 4096 bytes of it: keep the end of a very long path.
  if (frame !== undefined) info.frame = frame.length > 1000 ? `…${frame.slice(-999)}` : frame;
  return JSON.stringify(info);
}

/** `"<consumedAtMs> <token> [<of> ]<json>"`: `<of>` when the last of `of` (>= 2) reads took the object. */
const TOMBSTONE = /^(\d+) (\S+) (?:(\d+) )?([\s\S]*)$/;

/**
 * Parse a tombstone `"<consumedAtMs> <token> <json>"` (or, for a `reads: n`
 * object, `"<consumedAtMs> <token> <n> <json>"`), relative to the server's
 * `nowMs` (both are Redis server time, so clocks of different hosts do not
 * matter).
 */
export function parseTombstone(tombstone: Buffer | string, nowMs: number | undefined): ConsumedBy {
  const text = tombstone.toString();
  const m = TOMBSTONE.exec(text);
  const at = Number(m?.[1]);
  let info: Partial<ConsumerInfo> = {};
  try {
    info = JSON.parse(m?.[4] ?? '') as Partial<ConsumerInfo>;
  } catch {
    // A damaged tombstone still tells us the object was consumed.
  }
  const out: ConsumedBy = {};
  if (m?.[3] !== undefined && Number(m[3]) > 1) out.reads = Number(m[3]);
  if (typeof info.pid === 'number') out.pid = info.pid;
  if (typeof info.host === 'string') out.host = info.host;
  if (typeof info.frame === 'string') out.frame = info.frame;
  if (nowMs !== undefined && Number.isFinite(at)) out.agoMs = nowMs - at;
  return out;
}

/** The consumer token a tombstone records, if it is well-formed. */
export function tombstoneToken(tombstone: Buffer | string): string | undefined {
  return /^\d+ (\S+) /.exec(tombstone.toString())?.[1];
}

/** A sentence about who consumed an object: "consumed by pid …", or "read 3 of 3 times, last by pid …". */
export function explainConsumer(by: ConsumedBy): string {
  const ago = by.agoMs !== undefined ? ` ${(by.agoMs / 1000).toFixed(1)} s ago` : '';
  const where = by.frame ? ` at ${by.frame}` : '';
  const who = `pid ${by.pid ?? '?'} on ${by.host ?? '?'}${ago}${where}`;
  return by.reads !== undefined ? `read ${by.reads} of ${by.reads} times, last by ${who}` : `consumed by ${who}`;
}

/** A sentence about a tombstone (see {@link parseTombstone}). */
export function explainTombstone(tombstone: Buffer | string, nowMs: number | undefined): string {
  return explainConsumer(parseTombstone(tombstone, nowMs));
}
