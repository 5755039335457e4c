/**
 * Let a process exit at once after `store.close()`, whatever it read.
 *
 * ioredis 5 parses replies with `redis-parser` 3. When a bulk reply spans
 * several socket reads (any value over ~64 KB), the parser copies it into a
 * module-wide buffer pool, grown to three times the value, and starts a
 * module-wide `setInterval(decreaseBufferPool, 50)` that shrinks the pool by
 * a tenth per tick and stops once it is under 50 KB. That interval is never
 * `unref()`ed, so it holds the event loop: after reading an 8 MB value the
 * process lingered about 3 s after its last connection closed (1.7-3.5 s
 * measured), which defeats `unrefWhenIdle` in serverless handlers and
 * workers. The timer only trims a cache; it has no reason to keep a process
 * alive.
 *
 * The timer is private to the parser module, so it is unref'd where it is
 * made: the parser's `execute` is wrapped so that, only for the one chunk
 * that completes a multi-chunk bulk reply (the only path that can start the
 * timer), `setInterval` is swapped for a one-shot version that unrefs the
 * timer it creates. The swap is undone as soon as the parser calls back
 * with a reply (before any user code can run) or returns. Every other chunk
 * goes straight to the parser. This is applied once, to the copy of
 * `redis-parser` that our ioredis loads.
 *
 * @module
 */
import { createRequire } from 'node:module';
import createDebug from 'debug';

const log = createDebug('proxystore:redis');

interface ParserState {
  bigStrSize: number;
  totalChunkSize: number;
  returnReply: (reply: unknown) => void;
  returnError: (err: unknown) => void;
  returnFatalError: (err: unknown) => void;
}
type Execute = (this: ParserState, buffer: Buffer) => void;

const kPatched = Symbol.for('proxystore-redis.parser-timer');

/**
 * Wrap `Parser.prototype.execute` (see the module comment). Returns false
 * when the parser does not look like redis-parser 3 (left alone).
 */
export function unrefParserTimer(Parser: unknown): boolean {
  const proto = (Parser as { prototype?: Record<PropertyKey, unknown> } | undefined)?.prototype;
  if (!proto || typeof proto.execute !== 'function') return false;
  if (proto[kPatched]) return true;
  const execute = proto.execute as Execute;
  proto.execute = function patchedExecute(this: ParserState, buffer: Buffer): void {
    // Only the chunk that completes a bulk string spanning several chunks
    // reaches the pool's resize, which is what starts the interval.
    if (this.bigStrSize === 0 || this.totalChunkSize + buffer.length < this.bigStrSize) {
      execute.call(this, buffer);
      return;
    }
    const realSetInterval = globalThis.setInterval;
    const { returnReply, returnError, returnFatalError } = this;
    const restore = () => {
      if (globalThis.setInterval !== realSetInterval) globalThis.setInterval = realSetInterval;
      this.returnReply = returnReply;
      this.returnError = returnError;
      this.returnFatalError = returnFatalError;
    };
    globalThis.setInterval = function oneShotUnrefInterval(...args: Parameters<typeof setInterval>) {
      globalThis.setInterval = realSetInterval;
      const timer = realSetInterval(...args);
      timer.unref();
      return timer;
    } as typeof setInterval;
    // Before any reply reaches ioredis (and so any user code), put everything back.
    this.returnReply = (reply) => {
      restore();
      returnReply(reply);
    };
    this.returnError = (err) => {
      restore();
      returnError(err);
    };
    this.returnFatalError = (err) => {
      restore();
      returnFatalError(err);
    };
    try {
      execute.call(this, buffer);
    } finally {
      restore();
    }
  };
  proto[kPatched] = true;
  return true;
}

/** Apply {@link unrefParserTimer} to the redis-parser that ioredis resolves. */
function patchIoredisParser(): void {
  try {
    const require = createRequire(import.meta.url);
    const fromIoredis = createRequire(require.resolve('ioredis'));
    if (!unrefParserTimer(fromIoredis('redis-parser'))) log('redis-parser not recognised: its pool timer is left as it is');
  } catch (err) {
    log('redis-parser not found next to ioredis (%s): its pool timer is left as it is', (err as Error).message);
  }
}

patchIoredisParser();
