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
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findSourceMap } from 'node:module';

/** The library's own directory (src/ or dist/), whose frames are skipped. */
const LIBRARY_DIR = dirname(fileURLToPath(import.meta.url));
const HOST = hostname();
/** The same directory as a file:// URL prefix (how V8 names ES module frames). */
const LIBRARY_URL = pathToFileURL(LIBRARY_DIR).href;
/** The error a single frame is formatted under (its header line is dropped). */
const HEADER = new Error();

/** Describes the consumer. */
export interface ConsumerInfo {
  pid: number;
  host: string;
  /** First stack frame outside the library, e.g. `/app/worker.ts:17:9`. */
  frame?: string;
}

/**
 * The caller's first stack frame outside this library and Node internals.
 * Every consume sends it. The stack is taken as V8's structured call sites
 * (no frame is formatted to a string, and none is source-mapped), the
 * library's and Node's frames are skipped by file name, and only the frame
 * that is kept is formatted: source-mapped through an installed
 * `Error.prepareStackTrace` (vitest, source-map-support) or Node's own source
 * maps when they are on (`--enable-source-maps`, tsx). Formatting every frame
 * with source maps on cost about 2 µs a frame, the largest client-side cost
 * of a consume (docs/performance.md).
 */
export function callerFrame(): string | undefined {
  return firstOutside(callerFrame, 10) ?? firstOutside(callerFrame, 30);
}

/**
 * {@link callerFrame}, taken from the frame that called `entry` (a public
 * entry point on the stack now, such as `resolve`): its caller is usually
 * the first frame outside the library, so V8 collects 3 call sites instead
 * of the ~10 (async ones included) below the script call, which cost about
 * a third of a consume's client time (docs/performance.md). The same frame
 * as callerFrame() would find.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function callerFrameAbove(entry: Function): string | undefined {
  return firstOutside(entry, 3) ?? firstOutside(entry, 30);
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
function firstOutside(above: Function, depth: number): string | undefined {
  const holder: { stack?: unknown } = {};
  const limit = Error.stackTraceLimit;
  const installed = Error.prepareStackTrace;
  let sites: NodeJS.CallSite[] = [];
  Error.stackTraceLimit = depth;
  Error.prepareStackTrace = (_e, s) => s;
  try {
    Error.captureStackTrace(holder, above);
    sites = holder.stack as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = installed;
    Error.stackTraceLimit = limit;
  }
  for (const site of sites) {
    const name = site.getFileName();
    if (!name || site.isNative() || name.startsWith('node:') || name.includes('/node_modules/')) continue;
    // Compared as V8 gives them (a path, or a file:// URL for ES modules): no URL parsing per frame.
    if (name.startsWith(LIBRARY_DIR) || name.startsWith(LIBRARY_URL)) continue;
    const file = name.startsWith('file://') ? fileURLToPath(name) : name;
    return format(site, file, installed);
  }
  return undefined;
}

/** Frames formatted so far, by unmapped position: a consumer in a loop is source-mapped once (per formatter and source-map setting). */
const formatted = new Map<string, string>();
let formattedBy: { installed: typeof Error.prepareStackTrace | undefined; maps: boolean } = { installed: undefined, maps: false };

/** `file:line:column` of one call site, source-mapped the way a stack trace would be. */
function format(site: NodeJS.CallSite, file: string, installed: typeof Error.prepareStackTrace): string {
  const line = site.getLineNumber() ?? 0;
  const column = site.getColumnNumber() ?? 0;
  if (formattedBy.installed !== installed || formattedBy.maps !== process.sourceMapsEnabled) {
    formatted.clear();
    formattedBy = { installed, maps: process.sourceMapsEnabled };
  }
  const at = `${file}:${line}:${column}`;
  let frame = formatted.get(at);
  if (frame === undefined) {
    frame = mapped(site, file, line, column, installed);
    if (formatted.size >= 1000) formatted.clear();
    formatted.set(at, frame);
  }
  return frame;
}

function mapped(site: NodeJS.CallSite, file: string, line: number, column: number, installed: typeof Error.prepareStackTrace): string {
  if (process.sourceMapsEnabled) {
    const entry = findSourceMap(file)?.findEntry(line - 1, column - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    if (entry?.originalSource !== undefined && entry.originalLine !== undefined && entry.originalColumn !== undefined) {
      const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : entry.originalSource;
      return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    }
  }
  if (installed && installed.name !== 'ErrorPrepareStackTrace') {
    // A formatter of its own (vitest, source-map-support) maps the frame: take the location out of its line.
    try {
      const text = String(installed(HEADER, [site]));
      const m = /\(?((?:file:\/\/)?[^\s()]+:\d+:\d+)\)?\s*$/.exec(text.split('\n').pop()?.trim() ?? '');
      if (m) return (m[1] as string).replace(/^file:\/\//, '');
    } catch {
      // Fall back to the unmapped location.
    }
  }
  return `${file}:${line}:${column}`;
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
