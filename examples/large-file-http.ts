/**
 * A large file through Redis to an HTTP response, in bounded memory: the
 * file is streamed into the store (`putStream` from `fs.createReadStream`),
 * and an HTTP server streams it back out (`getStream` piped into the
 * response, with backpressure: a slow client does not make the server buffer
 * the object). A `Range: bytes=a-b` request is answered with `getRange`.
 *
 * Neither side ever holds the whole file: the store writes and reads a few
 * chunks (`chunkSize`, 4 MB by default) at a time, and a file larger than
 * Redis's 512 MB string limit works the same way.
 *
 * Run on its own, it writes a 64 MB file (or takes the path you give), stores
 * it, serves it on 127.0.0.1, downloads it and checks the SHA-256:
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/large-file-http.ts [FILE]
 *
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { ProxyResolveMissingKeyError, RedisConnector, Store } from '../src/index.js';

/** Store a file; its key. It expires after `ttl` seconds unless evicted first. */
export async function upload(store: Store, path: string, ttl = 3600): Promise<string> {
  return store.putStream(createReadStream(path), { ttl });
}

/**
 * An HTTP server on 127.0.0.1 that serves `GET /objects/<key>` from the store:
 * the whole object streamed (200), or one `Range: bytes=<first>-<last>` (206),
 * 404 for a key the store does not have.
 */
export function serve(store: Store): Server {
  return createServer((req, res) => {
    const key = decodeURIComponent(/^\/objects\/([^/?]+)$/.exec(req.url ?? '')?.[1] ?? '');
    if (req.method !== 'GET' || key === '') {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (range) {
      const first = Number(range[1]);
      const last = Number(range[2]);
      store.getRange(key, first, last + 1).then(
        (bytes) => {
          // The total is not known without reading the object: RFC 9110 allows '*'.
          res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': `bytes ${first}-${first + bytes.length - 1}/*` });
          res.end(bytes);
        },
        (err: unknown) => fail(res, err),
      );
      return;
    }
    const body = store.getStream(key);
    // The status goes out once the first bytes are there, so a missing key can still answer 404.
    new Promise<void>((ok, ko) => {
      body.once('readable', ok);
      body.once('error', ko);
    })
      .then(() => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return pipeline(body, res);
      })
      .catch((err: unknown) => fail(res, err));
  });
}

function fail(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy(err as Error); // mid-body: the client sees a cut response, not a short file
    return;
  }
  const missing = err instanceof ProxyResolveMissingKeyError;
  res.writeHead(missing ? 404 : 500, { 'content-type': 'text/plain' }).end(missing ? 'no such object\n' : 'error\n');
}

/** GET `url` (with an optional Range header); status and the SHA-256 and length of the body, read as a stream. */
export async function download(url: string, range?: string): Promise<{ status: number; sha256: string; bytes: number; headers: IncomingMessage['headers'] }> {
  const res = await new Promise<IncomingMessage>((ok, ko) => get(url, range ? { headers: { range } } : {}, ok).once('error', ko));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: res.statusCode ?? 0, sha256: hash.digest('hex'), bytes, headers: res.headers };
}

/** A file of `bytes` pseudo-random bytes (written as a stream: it never sits in memory). */
export async function writeSampleFile(path: string, bytes: number): Promise<void> {
  let left = bytes;
  let block = 0;
  const source = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, 1 << 20);
      const buf = Buffer.allocUnsafe(n + 3);
      for (let i = 0; i < n; i += 4) buf.writeUInt32LE((Math.imul(block, 2654435761) + i) >>> 0, i);
      block++;
      left -= n;
      this.push(buf.subarray(0, n));
    },
  });
  await pipeline(source, createWriteStream(path));
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function main(): Promise<void> {
  const url = process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const namespace = process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'example';
  const store = new Store('large-file-example', new RedisConnector({ url, namespace }));
  const dir = await mkdtemp(join(tmpdir(), 'large-file-'));
  const path = process.argv[2] ?? join(dir, 'sample.bin');
  if (!process.argv[2]) await writeSampleFile(path, 64 * 1024 * 1024);
  const server = serve(store);
  try {
    const size = (await stat(path)).size;
    const key = await upload(store, path);
    console.log(`stored ${size} bytes from ${path} as ${key}`);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as { port: number };
    const got = await download(`http://127.0.0.1:${port}/objects/${encodeURIComponent(key)}`);
    const same = got.status === 200 && got.bytes === size && got.sha256 === (await sha256File(path));
    console.log(`downloaded ${got.bytes} bytes over HTTP: ${same ? 'same SHA-256 as the file' : 'DIFFERENT from the file'}`);
    await store.evict(key);
    if (!same) process.exitCode = 1;
  } finally {
    server.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
