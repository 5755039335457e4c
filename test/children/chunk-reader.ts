/**
 * Reads one chunked object of the test's namespace (Redis target from the
 * environment) in another process, as argv[2] says:
 *
 * - `hash KEY`: getStream of KEY into SHA-256; sends { hash, bytes } and exits.
 * - `stall KEY`: getStream of KEY, takes its first piece, sends
 *   { started: bytes } and then reads nothing more (the stream stays paused)
 *   until the test kills the process.
 * - `loop KEY`: reads KEY over and over, by turns with get, getStream and
 *   getRange (a slice across chunk boundaries), until sent { stop: true }.
 *   Every read is checked to hold one byte value throughout (the test fills
 *   each version with its own byte). Sends { seen: [byte, ...] } each time a
 *   read shows a version not seen before, and at the end { done: true, reads,
 *   versions, mixed, errors } (mixed: reads that held more than one byte value,
 *   with the values; errors: read failures by error name).
 */
import { createHash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const [mode, key] = process.argv.slice(2) as [string, string];
const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`reader-${process.pid}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }));

function sink(onChunk: (b: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      onChunk(chunk);
      done();
    },
  });
}

async function readAll(readable: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(readable, sink((b) => parts.push(b)));
  return Buffer.concat(parts);
}

/** The distinct byte values of `b`, ascending. */
function values(b: Uint8Array): number[] {
  const seen = new Set<number>();
  for (const x of b) seen.add(x);
  return [...seen].sort((x, y) => x - y);
}

if (mode === 'hash') {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    store.getStream(key),
    sink((b) => {
      bytes += b.length;
      hash.update(b);
    }),
  );
  await store.close();
  process.send?.({ hash: hash.digest('hex'), bytes }, () => process.disconnect());
} else if (mode === 'stall') {
  const stream = store.getStream(key);
  stream.once('data', (b: Buffer) => {
    stream.pause();
    process.send?.({ started: b.length });
  });
} else if (mode === 'loop') {
  let stop = false;
  process.on('message', (m: { stop?: boolean }) => {
    if (m.stop) stop = true;
  });
  const versions = new Set<number>();
  const mixed: number[][] = [];
  const errors: Record<string, number> = {};
  let reads = 0;
  for (let i = 0; !stop; i++) {
    let got: Uint8Array | undefined;
    try {
      const how = i % 3;
      if (how === 0) got = await store.get<Buffer>(key);
      else if (how === 1) got = await readAll(store.getStream(key));
      else got = await store.getRange(key, 100, 3 * 64 * 1024 + 100);
    } catch (err) {
      const name = (err as Error).name;
      errors[name] = (errors[name] ?? 0) + 1;
      continue;
    }
    if (!got) {
      errors.missing = (errors.missing ?? 0) + 1;
      continue;
    }
    reads++;
    const vs = values(got);
    if (vs.length !== 1) mixed.push(vs);
    else if (!versions.has(vs[0] as number)) {
      versions.add(vs[0] as number);
      process.send?.({ seen: [...versions] });
    }
  }
  await store.close();
  process.send?.({ done: true, reads, versions: [...versions], mixed: mixed.slice(0, 10), mixedCount: mixed.length, errors }, () =>
    process.disconnect(),
  );
} else {
  throw new Error(`unknown mode ${mode}`);
}
