/**
 * Start throw-away Redis servers (and a Redis Cluster) from the `redis-server` binary, for
 * tests, the demo and the benchmark. No test-framework dependency.
 *
 * Servers run as plain child processes (not daemonized) so their pid is ours to kill; each one
 * gets a fresh temporary `--dir`, no persistence, and dies with this process.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>`, or `rediss://` with the `tls` option */
  url: string;
  host: string;
  port: number;
  pid: number;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process has exited and its dir is gone. */
  stop(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** A fixed port; by default a free one is picked (and retried if someone grabs it first). */
  port?: number;
  /** Extra `redis-server` arguments, appended after the defaults (so they can override them). */
  args?: string[];
  /** Working directory of the process (the data `--dir` is always a fresh temp dir). */
  cwd?: string;
  /**
   * Serve TLS only: the port is a `--tls-port` (plain `--port 0`), clients need no certificate
   * (`--tls-auth-clients no`), and readiness is checked over TLS against `caFile`.
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export type RedisSource = 'REDIS_URL' | 'redis-server' | 'testcontainers' | 'localhost:6379';

export interface FoundRedis {
  url: string;
  source: RedisSource;
  stop(): Promise<void>;
}

export interface LocalRedisCluster {
  nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 3_000;

// `exit` handlers cannot await, but process.kill and rmSync are synchronous: enough to take
// our servers (and their temp dirs) down with us when the parent ends, normally, by
// process.exit, or by an uncaught error.
const liveChildren = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess, dir: string): void {
  liveChildren.set(child, dir);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [c, d] of liveChildren) {
        try {
          c.kill('SIGKILL');
          rmSync(d, { recursive: true, force: true });
        } catch {
          // already gone
        }
      }
    });
  }
}

/** A port that was free a moment ago, found by binding port 0 on 127.0.0.1. */
export async function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/**
 * Send an inline `PING` over a raw socket; true on `+PONG`. Raw so that this module does not
 * need ioredis (and its reconnect loop) just to probe a port.
 */
export async function ping(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.connect(port, host, () => sock.write('PING\r\n'));
  });
}

/** `process_id` from `INFO server`, or undefined if nothing answers (raw socket, as ping; TLS when `ca` is given). */
async function serverPid(host: string, port: number, timeoutMs = 500, ca?: Buffer): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = ca ? tlsConnect({ host, port, ca }, () => sock.write('INFO server\r\n')) : new Socket();
    let buf = '';
    const done = (pid: number | undefined) => {
      sock.destroy();
      resolve(pid);
    };
    sock.setTimeout(timeoutMs, () => done(undefined));
    sock.once('error', () => done(undefined));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const m = /process_id:(\d+)\r\n/.exec(buf);
      if (m) done(Number(m[1]));
      else if (buf.startsWith('-') && buf.includes('\r\n')) done(undefined);
    });
    if (!ca) sock.connect(port, host, () => sock.write('INFO server\r\n'));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startOnce(port: number, opts: StartRedisServerOptions): Promise<LocalRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'proxystore-redis-'));
  const logPath = join(dir, 'redis.log');
  // stdout and stderr go to a file, not a pipe: no open handle in this process, and config
  // errors (printed to stderr before logging starts) are still there to report.
  const log = await open(logPath, 'a');
  const args = [
    '--save', '',
    '--appendonly', 'no',
    '--bind', HOST,
    ...(opts.tls
      ? [
          '--port', '0',
          '--tls-port', String(port),
          '--tls-cert-file', opts.tls.certFile,
          '--tls-key-file', opts.tls.keyFile,
          '--tls-ca-cert-file', opts.tls.caFile,
          '--tls-auth-clients', 'no',
        ]
      : ['--port', String(port)]),
    '--dir', dir,
    ...(opts.args ?? []),
  ];
  const ca = opts.tls ? readFileSync(opts.tls.caFile) : undefined;
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, {
      cwd: opts.cwd ?? dir,
      stdio: ['ignore', log.fd, log.fd],
    });
  } finally {
    await log.close();
  }
  child.unref();

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exited ??= { code: null, signal: null };
      resolve();
    });
  });
  if (child.pid !== undefined) trackChild(child, dir);

  const cleanupDir = () => rm(dir, { recursive: true, force: true });

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited || spawnError) {
      const out = await tail(logPath); // before the dir holding the log is removed
      await cleanupDir();
      const why = spawnError
        ? `could not spawn redis-server: ${spawnError.message}`
        : `redis-server exited early (code ${exited?.code}, signal ${exited?.signal})`;
      throw new RedisStartError(`${why}\n--- redis-server output ---\n${out}`, port);
    }
    // Ask for its pid, not just PONG: another server may already hold the port (ours then
    // exits with "Address already in use", maybe only after that one has answered).
    if ((await serverPid(HOST, port, 500, ca)) === child.pid) break;
    if (Date.now() > deadline) {
      const out = await tail(logPath);
      child.kill('SIGKILL');
      await exitPromise;
      await cleanupDir();
      throw new RedisStartError(
        `redis-server on ${HOST}:${port} did not answer within ${START_TIMEOUT_MS} ms\n` +
          `--- redis-server output ---\n${out}`,
        port,
      );
    }
    await sleep(50);
  }

  const pid = child.pid as number;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        // This timer is ref'd on purpose: it keeps the loop alive until the (unref'd) child
        // has been reaped.
        const killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
        await exitPromise;
        clearTimeout(killer);
      }
      await cleanupDir();
    })());

  return { url: `${opts.tls ? 'rediss' : 'redis'}://${HOST}:${port}`, host: HOST, port, pid, stop };
}

class RedisStartError extends Error {
  constructor(
    message: string,
    readonly port: number,
  ) {
    super(message);
    this.name = 'RedisStartError';
  }
}

/**
 * Start `redis-server` as a child process on a free port (or `opts.port`), without
 * persistence, bound to 127.0.0.1, in a fresh temporary `--dir`. Resolves once it answers
 * its pid in INFO (10 s at most, else rejects with the tail of its output).
 *
 * @example
 * const r = await startRedisServer();
 * // ... new Redis(r.url) ...
 * await r.stop();
 */
export async function startRedisServer(opts: StartRedisServerOptions = {}): Promise<LocalRedis> {
  if (opts.port !== undefined) return startOnce(opts.port, opts);
  // A port found free can be taken before redis binds it; try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await getFreePort(), opts);
    } catch (err) {
      lastError = err;
      if (!(err instanceof RedisStartError) || !/address already in use/i.test(err.message)) throw err;
    }
  }
  throw lastError;
}

async function hasRedisServerBinary(): Promise<boolean> {
  try {
    await execFileAsync('redis-server', ['--version'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
}

/**
 * Find a Redis for tests and tools, in this order: `REDIS_URL`; a `redis-server` on PATH,
 * started for the caller; a testcontainers `redis:7-alpine` (needs Docker); an already running
 * 127.0.0.1:6379. `stop()` stops what was started and is a no-op for what was found.
 */
export async function findOrStartRedis(opts: { log?: (msg: string) => void } = {}): Promise<FoundRedis> {
  const log = opts.log ?? (() => {});
  const tried: string[] = [];

  const envUrl = process.env.REDIS_URL;
  if (envUrl) {
    log(`using REDIS_URL=${envUrl}`);
    return { url: envUrl, source: 'REDIS_URL', stop: async () => {} };
  }
  tried.push('REDIS_URL: not set');

  if (await hasRedisServerBinary()) {
    try {
      const r = await startRedisServer();
      log(`started redis-server pid ${r.pid} at ${r.url}`);
      return { url: r.url, source: 'redis-server', stop: r.stop };
    } catch (err) {
      tried.push(`redis-server: ${errorMessage(err)}`);
    }
  } else {
    tried.push('redis-server: not found on PATH');
  }

  try {
    // Imported only here so that nothing loads Docker code unless it is needed.
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
      .start();
    const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    log(`started testcontainers redis:7-alpine at ${url} (${tried.join('; ')})`);
    return {
      url,
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  } catch (err) {
    tried.push(`testcontainers: ${errorMessage(err)}`);
  }

  if (await ping(HOST, 6379)) {
    log(`using the Redis already running on ${HOST}:6379 (${tried.join('; ')})`);
    return { url: `redis://${HOST}:6379`, source: 'localhost:6379', stop: async () => {} };
  }
  tried.push(`${HOST}:6379: no answer to PING`);

  throw new Error(
    `No Redis available. Tried, in order:\n  - ${tried.join('\n  - ')}\n` +
      'Set REDIS_URL, install redis-server, or start Docker.',
  );
}

async function redisCli(args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', args, { timeout: timeoutMs });
  return stdout;
}

/**
 * Start a Redis Cluster of `masters` (default 3, at least 3) masters and no replicas from
 * `redis-server` binaries, and wait until every node reports `cluster_state:ok` and knows all
 * the others.
 *
 * @example
 * const c = await startRedisCluster();
 * const client = new Cluster(c.nodes);
 * // ...
 * await client.quit(); await c.stop();
 */
export async function startRedisCluster(opts: { masters?: number } = {}): Promise<LocalRedisCluster> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(`a Redis Cluster needs at least 3 masters (got ${masters})`);
  }
  const servers: LocalRedis[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      // The bus port defaults to port + 10000, which may be out of range or taken for a
      // port picked from the ephemeral range: give it its own free port (Redis >= 7.0).
      const busPort = await getFreePort();
      servers.push(
        await startRedisServer({
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', '2000',
            '--cluster-port', String(busPort),
          ],
        }),
      );
    }
    await redisCli([
      '--cluster', 'create',
      ...servers.map((s) => `${s.host}:${s.port}`),
      '--cluster-replicas', '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const infos = await Promise.all(
        servers.map((s) => redisCli(['-h', s.host, '-p', String(s.port), 'CLUSTER', 'INFO'], 5_000)),
      );
      const ready = infos.every(
        (info) =>
          /cluster_state:ok/.test(info) &&
          new RegExp(`cluster_known_nodes:${masters}\\b`).test(info) &&
          /cluster_slots_ok:16384\b/.test(info),
      );
      if (ready) break;
      if (Date.now() > deadline) {
        throw new Error(`Redis Cluster did not reach cluster_state:ok in 20 s:\n${infos.join('\n---\n')}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: servers.map((s) => ({ host: s.host, port: s.port })), stop };
}
