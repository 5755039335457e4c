/**
 * Start throw-away Redis servers (and a Redis Cluster) from the `redis-server` binary, for
 * tests, the demo and the benchmark. No test-framework dependency.
 *
 * Servers run as plain child processes (not daemonized) so their pid is ours to kill; each one
 * gets a fresh temporary `--dir`, no persistence, and dies with this process.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

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
  /**
   * Data directory to use, created by the caller and kept by `stop()` (a restarted cluster node
   * finds its `nodes.conf` there again). By default a fresh temporary dir, removed by `stop()`.
   */
  dir?: string;
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
const liveChildren = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess, dir: string | undefined): void {
  liveChildren.set(child, dir);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [c, d] of liveChildren) {
        try {
          c.kill('SIGKILL');
          if (d !== undefined) rmSync(d, { recursive: true, force: true });
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
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'proxystore-redis-')));
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
  if (child.pid !== undefined) trackChild(child, ownDir ? dir : undefined);

  const cleanupDir = async () => {
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

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

// ---------------------------------------------------------------------------------------------
// Redis Cluster: masters and replicas from redis-server binaries, and the faults the chaos suite
// applies to them (kill, freeze, restart, graceful failover, resharding).
// ---------------------------------------------------------------------------------------------

/** Options of {@link startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Masters, at least 3 (default 3). */
  masters?: number;
  /** Replicas of each master (default 0). */
  replicas?: number;
  /** `cluster-node-timeout`, in ms (default 2,000): how long a silent master takes to be failed over. */
  nodeTimeoutMs?: number;
  /** The longest wait for the cluster to converge, at start and after each fault (default 60,000 ms). */
  settleTimeoutMs?: number;
}

/** One redis-server of a local cluster, as last seen (a snapshot: ask again after a fault). */
export interface ClusterServer {
  readonly host: string;
  readonly port: number;
  /** Process id of the running process (a restart gives a new one); -1 while killed. */
  readonly pid: number;
  /** Cluster node id. */
  readonly id: string;
  /** SIGKILLed and not restarted yet. */
  readonly killed: boolean;
  /** SIGSTOPped right now (during {@link ManagedRedisCluster.freezeMaster}). */
  readonly frozen: boolean;
}

/** A master, its replicas and its slots, as the cluster sees them. */
export interface ClusterShard {
  master: ClusterServer;
  replicas: ClusterServer[];
  /** Inclusive slot ranges `[first, last]`, ascending. */
  slots: [number, number][];
}

/** What a fault helper did and how long the cluster took to settle afterwards. */
export interface FaultReport {
  kind: 'kill' | 'freeze' | 'failover' | 'restart' | 'reshard';
  /** The node the fault was applied to, with its pid and id at that moment. */
  node: { port: number; pid: number; id: string };
  /** Epoch ms at which the fault began (signal sent, command issued). */
  startedAt: number;
  /** Epoch ms at which the cluster was seen converged again. */
  settledAt: number;
  /** `settledAt - startedAt`. */
  settledAfterMs: number;
  /** The master of the affected shard afterwards. */
  master?: { port: number; id: string };
  /** Ms from `startedAt` until a replica was first seen promoted (kill, freeze, failover). */
  promotedAfterMs?: number;
  /** freeze and failover: the old master came back as a replica of its promoted replica. */
  demoted?: boolean;
  /** freeze: how long the master was stopped. */
  frozenMs?: number;
}

/** Options of {@link ManagedRedisCluster.reshard}. */
export interface ReshardOptions {
  /**
   * Ms each slot stays in migration before its keys move, and between two batches of its keys
   * (default 0): makes migrating slots observable by a workload running meanwhile. A function
   * gives each slot its own pause.
   */
  pauseMs?: number | ((slot: number) => number);
  /**
   * Keys per MIGRATE (default 100); a function gets the slot and how many keys it holds. Small
   * batches with a pause keep a slot a while with some of its keys moved and others not (where
   * multi-key commands and scripts get TRYAGAIN).
   */
  batchKeys?: number | ((slot: number, keysInSlot: number) => number);
  /** MIGRATE's own timeout, in ms (default 5,000). */
  migrateTimeoutMs?: number;
  /** Slots in migration at once, taken in list order (default 1). */
  parallel?: number;
}

/** When one slot was in migration (IMPORTING/MIGRATING set until SETSLOT NODE), epoch ms. */
export interface SlotWindow {
  slot: number;
  start: number;
  end: number;
  /** Keys moved with the slot. */
  keys: number;
}

/** What {@link ManagedRedisCluster.reshard} moved. */
export interface ReshardReport extends FaultReport {
  kind: 'reshard';
  /** The node the slots went to. */
  target: { port: number; id: string };
  slots: number[];
  keys: number;
  windows: SlotWindow[];
}

/**
 * A local Redis Cluster whose nodes this process started and can break on purpose. Masters are
 * numbered by their lowest slot (master 0 serves slot 0 unless resharding moved it), so an index
 * always names a master that exists now. Every fault helper returns once the cluster is seen
 * converged from every running node (or throws after `settleTimeoutMs`, saying what it saw).
 */
export interface ManagedRedisCluster extends LocalRedisCluster {
  /** Every node this cluster has had, with pid, id and state. */
  servers(): ClusterServer[];
  /** The current masters (by lowest slot), their replicas and slots. */
  shards(): Promise<ClusterShard[]>;
  /**
   * Wait until every running node reports `cluster_state:ok`, they agree on who serves which
   * slot, no running node is flagged failing, and (unless `fullReplicas: false`) every master has
   * its replicas, linked and in sync. Returns the ms waited.
   */
  waitConverged(opts?: { fullReplicas?: boolean; timeoutMs?: number }): Promise<number>;
  /** SIGKILL master `i`; returns once a replica took its slots and the survivors say `cluster_state:ok`. */
  killMaster(i: number): Promise<FaultReport>;
  /**
   * SIGSTOP master `i` for `ms`, then SIGCONT. Returns once the cluster has converged, the
   * frozen master back as a master, or (when its replica was promoted meanwhile) as a replica.
   */
  freezeMaster(i: number, ms: number): Promise<FaultReport>;
  /** Start a killed node again (the only killed one, or the one on `port`); it rejoins as a replica. */
  restartNode(port?: number): Promise<FaultReport>;
  /**
   * SIGKILL master `i` (one without a running replica) and start it again at once on its port
   * with its nodes.conf but none of its data (no persistence): a master restarted empty. It keeps
   * its slots; returns once every node says `cluster_state:ok` again.
   */
  restartMasterEmpty(i: number): Promise<FaultReport>;
  /** CLUSTER FAILOVER (graceful, no data loss) on a replica of master `i`. */
  failover(i: number): Promise<FaultReport>;
  /**
   * Move slots from master `from` to master `to`: `slots` of them (its lowest), or exactly the
   * slots listed (all served by `from`). Per slot: SETSLOT IMPORTING/MIGRATING, MIGRATE ... KEYS
   * in batches, SETSLOT NODE on every master. Returns once the cluster agrees on the new owner,
   * with each slot's migration window.
   */
  reshard(from: number, to: number, slots: number | number[], opts?: ReshardOptions): Promise<ReshardReport>;
}

const CLUSTER_POLL_MS = 100;
/** Redis gives up a manual failover after 5 s (CLUSTER_MF_TIMEOUT); the harness asks again after this long. */
const MANUAL_FAILOVER_RETRY_MS = 6000;
const CONTROL_TIMEOUT_MS = 10_000;
const SLOTS = 16384;

interface NodeLine {
  id: string;
  port: number;
  flags: string[];
  masterId: string | undefined;
  slots: [number, number][];
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const f = line.split(' ');
      const port = /:(\d+)@/.exec(f[1] ?? '');
      const slots: [number, number][] = [];
      for (const token of f.slice(8)) {
        if (token.startsWith('[')) continue; // a migration marker, not an owned slot
        const [a, b] = token.split('-');
        slots.push([Number(a), Number(b ?? a)]);
      }
      slots.sort((x, y) => x[0] - y[0]);
      return {
        id: f[0] ?? '',
        port: port ? Number(port[1]) : 0,
        flags: (f[2] ?? '').split(','),
        masterId: f[3] === '-' || f[3] === undefined ? undefined : f[3],
        slots,
      };
    });
}

function parseInfoText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

const isFailing = (l: NodeLine) => l.flags.includes('fail') || l.flags.includes('fail?');
const isMasterLine = (l: NodeLine) => l.flags.includes('master');
const rangesText = (slots: [number, number][]) => slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');

/** One redis-server of a managed cluster. */
class ClusterNodeProcess {
  server: LocalRedis | undefined;
  id = '';
  killed = false;
  frozen = false;
  constructor(
    public port: number,
    public busPort: number,
    readonly dir: string,
  ) {}
  get pid(): number {
    return this.killed ? -1 : (this.server?.pid ?? -1);
  }
  snapshot(): ClusterServer {
    return { host: HOST, port: this.port, pid: this.pid, id: this.id, killed: this.killed, frozen: this.frozen };
  }
}

/**
 * Control connections to the nodes, one per port, no reconnect loop and no offline queue beyond
 * the first connect: a dead node fails the command at once.
 */
class ClusterControl {
  private readonly clients = new Map<number, Redis>();

  async call(port: number, args: (string | number)[]): Promise<unknown> {
    let client = this.clients.get(port);
    if (!client || client.status === 'end' || client.status === 'close') {
      client?.disconnect();
      client = new Redis({
        host: HOST,
        port,
        lazyConnect: true,
        enableReadyCheck: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 2_000,
        commandTimeout: CONTROL_TIMEOUT_MS,
      });
      client.on('error', () => {}); // failures reach the caller as rejected commands
      this.clients.set(port, client);
    }
    const [command, ...rest] = args.map(String);
    try {
      return await client.call(command as string, ...rest);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof Error && err.name === 'ReplyError')) {
        client.disconnect();
        this.clients.delete(port);
      }
      throw new Error(`${HOST}:${port} ${args.slice(0, 4).join(' ')}${args.length > 4 ? ' ...' : ''}: ${message}`);
    }
  }

  async text(port: number, args: (string | number)[]): Promise<string> {
    const reply = await this.call(port, args);
    return Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
  }

  close(): void {
    for (const client of this.clients.values()) client.disconnect();
    this.clients.clear();
  }
}

function clusterNodeArgs(busPort: number, nodeTimeoutMs: number): string[] {
  return [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(nodeTimeoutMs),
    // The bus port defaults to port + 10000, which may be out of range or taken for a port
    // picked from the ephemeral range: give it its own free port (Redis >= 7.0).
    '--cluster-port', String(busPort),
    // A replica that (re)joins syncs at once instead of after Redis 7's 5 s diskless delay.
    '--repl-diskless-sync-delay', '0',
  ];
}

class ManagedCluster implements ManagedRedisCluster {
  private readonly control = new ClusterControl();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly procs: ClusterNodeProcess[],
    private readonly baseDir: string,
    private readonly replicasPerMaster: number,
    private readonly nodeTimeoutMs: number,
    private readonly settleTimeoutMs: number,
  ) {}

  /** Every node's address (a node that rejoined on another port is listed there). */
  get nodes(): { host: string; port: number }[] {
    return this.procs.map((p) => ({ host: HOST, port: p.port }));
  }

  servers(): ClusterServer[] {
    return this.procs.map((p) => p.snapshot());
  }

  private running(): ClusterNodeProcess[] {
    return this.procs.filter((p) => !p.killed && !p.frozen);
  }

  private byId(id: string): ClusterNodeProcess {
    const p = this.procs.find((q) => q.id === id);
    if (!p) throw new Error(`cluster node ${id} is not one of this cluster's processes`);
    return p;
  }

  private async view(port: number): Promise<NodeLine[]> {
    return parseClusterNodes(await this.control.text(port, ['CLUSTER', 'NODES']));
  }

  private async anyView(): Promise<NodeLine[]> {
    const errors: string[] = [];
    for (const p of this.running()) {
      try {
        return await this.view(p.port);
      } catch (err) {
        errors.push(errorMessage(err));
      }
    }
    throw new Error(`no node of the cluster answers CLUSTER NODES: ${errors.join('; ') || 'none is running'}`);
  }

  async shards(): Promise<ClusterShard[]> {
    const lines = await this.anyView();
    return lines
      .filter((l) => isMasterLine(l) && l.slots.length > 0)
      .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
      .map((m) => ({
        master: this.byId(m.id).snapshot(),
        replicas: lines.filter((l) => l.masterId === m.id && !isFailing(l)).map((l) => this.byId(l.id).snapshot()),
        slots: m.slots,
      }));
  }

  private async shard(i: number, operation: string): Promise<ClusterShard> {
    const shards = await this.shards();
    const shard = shards[i];
    if (!Number.isInteger(i) || !shard) {
      throw new RangeError(`${operation}(${i}): the cluster has ${shards.length} masters, numbered 0-${shards.length - 1}`);
    }
    return shard;
  }

  /** What keeps the cluster from being converged; empty when it is. */
  private async problems(fullReplicas: boolean): Promise<string[]> {
    const running = this.running();
    const out: string[] = [];
    const maps = new Map<number, string>();
    let firstView: NodeLine[] | undefined;
    for (const p of running) {
      try {
        const info = parseInfoText(await this.control.text(p.port, ['CLUSTER', 'INFO']));
        if (info.cluster_state !== 'ok') out.push(`${p.port}: cluster_state:${info.cluster_state}`);
        if (info.cluster_slots_ok !== String(SLOTS)) out.push(`${p.port}: cluster_slots_ok:${info.cluster_slots_ok}`);
        const lines = await this.view(p.port);
        firstView ??= lines;
        for (const q of running) {
          const line = lines.find((l) => l.id === q.id);
          if (!line) out.push(`${p.port} does not know ${q.port} yet`);
          else if (isFailing(line)) out.push(`${p.port} flags ${q.port} ${line.flags.join(',')}`);
        }
        maps.set(
          p.port,
          lines
            .filter((l) => isMasterLine(l) && l.slots.length > 0)
            .map((l) => `${l.port}=${rangesText(l.slots)}`)
            .sort()
            .join(' '),
        );
        const me = lines.find((l) => l.flags.includes('myself'));
        if (me?.flags.includes('slave')) {
          const repl = parseInfoText(await this.control.text(p.port, ['INFO', 'replication']));
          if (repl.master_link_status !== 'up' || repl.master_sync_in_progress !== '0') {
            out.push(`replica ${p.port}: master_link_status:${repl.master_link_status} master_sync_in_progress:${repl.master_sync_in_progress}`);
          }
        }
      } catch (err) {
        out.push(errorMessage(err));
      }
    }
    if (new Set(maps.values()).size > 1) {
      out.push(`nodes disagree on who serves which slots: ${[...maps].map(([port, map]) => `${port} sees {${map}}`).join('; ')}`);
    }
    if (firstView) {
      const runningIds = new Set(running.map((p) => p.id));
      for (const m of firstView.filter((l) => isMasterLine(l) && l.slots.length > 0)) {
        if (!runningIds.has(m.id)) out.push(`slots ${rangesText(m.slots)} are still served by ${m.port}, which is not running`);
        const replicas = firstView.filter((l) => l.masterId === m.id && runningIds.has(l.id) && !isFailing(l));
        if (fullReplicas && replicas.length < this.replicasPerMaster) {
          out.push(`master ${m.port} has ${replicas.length} of ${this.replicasPerMaster} replicas`);
        }
      }
    }
    if (running.length === 0) out.push('no node is running');
    return out;
  }

  private async waitFor(what: string, check: () => Promise<string[]>, timeoutMs = this.settleTimeoutMs): Promise<number> {
    const started = Date.now();
    for (;;) {
      const problems = await check();
      if (problems.length === 0) return Date.now() - started;
      if (Date.now() - started > timeoutMs) {
        throw new Error(`Redis Cluster: ${what} did not happen within ${timeoutMs} ms. Last seen:\n  ${problems.join('\n  ')}`);
      }
      await sleep(CLUSTER_POLL_MS);
    }
  }

  waitConverged(opts: { fullReplicas?: boolean; timeoutMs?: number } = {}): Promise<number> {
    const full = opts.fullReplicas ?? true;
    return this.waitFor(`convergence${full ? ' with every replica in sync' : ''}`, () => this.problems(full), opts.timeoutMs);
  }

  /** The first of `ids` that, asked itself, says it is a master serving slots. */
  private async promotedAmong(ids: string[]): Promise<ClusterNodeProcess | undefined> {
    for (const id of ids) {
      const p = this.byId(id);
      if (p.killed || p.frozen) continue;
      try {
        const me = (await this.view(p.port)).find((l) => l.flags.includes('myself'));
        if (me && isMasterLine(me) && me.slots.length > 0) return p;
      } catch {
        // not answering yet
      }
    }
    return undefined;
  }

  private async isMaster(p: ClusterNodeProcess): Promise<boolean> {
    const me = (await this.view(p.port)).find((l) => l.flags.includes('myself'));
    return me !== undefined && isMasterLine(me);
  }

  private report(kind: FaultReport['kind'], node: { port: number; pid: number; id: string }, startedAt: number, extra: Partial<FaultReport> = {}): FaultReport {
    const settledAt = Date.now();
    return { kind, node, startedAt, settledAt, settledAfterMs: settledAt - startedAt, ...extra };
  }

  async killMaster(i: number): Promise<FaultReport> {
    const shard = await this.shard(i, 'killMaster');
    const victim = this.byId(shard.master.id);
    const heirs = shard.replicas.filter((r) => !r.killed && !r.frozen).map((r) => r.id);
    if (heirs.length === 0) {
      throw new Error(`killMaster(${i}): master ${victim.port} has no running replica; its slots ${rangesText(shard.slots)} would have no server`);
    }
    const node = { port: victim.port, pid: victim.pid, id: victim.id };
    const startedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    victim.killed = true;
    await victim.server?.stop(); // reaps the process; its dir (nodes.conf) stays for restartNode
    let heir: ClusterNodeProcess | undefined;
    await this.waitFor(`promotion of a replica of killed master ${victim.port}`, async () => {
      heir = await this.promotedAmong(heirs);
      return heir ? [] : [`no replica of ${victim.port} says it is a master yet`];
    });
    const promotedAfterMs = Date.now() - startedAt;
    await this.waitFor(`cluster_state:ok on the survivors of killed master ${victim.port}`, () => this.problems(false));
    return this.report('kill', node, startedAt, { promotedAfterMs, master: { port: heir!.port, id: heir!.id } });
  }

  async freezeMaster(i: number, ms: number): Promise<FaultReport> {
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`freezeMaster: ms must be a positive number, got ${ms}`);
    const shard = await this.shard(i, 'freezeMaster');
    const victim = this.byId(shard.master.id);
    const heirs = shard.replicas.filter((r) => !r.killed && !r.frozen).map((r) => r.id);
    const node = { port: victim.port, pid: victim.pid, id: victim.id };
    const startedAt = Date.now();
    let promotedAfterMs: number | undefined;
    process.kill(victim.pid, 'SIGSTOP');
    victim.frozen = true;
    try {
      for (let left = ms; left > 0; left = startedAt + ms - Date.now()) {
        if (promotedAfterMs === undefined && (await this.promotedAmong(heirs))) promotedAfterMs = Date.now() - startedAt;
        await sleep(Math.min(2 * CLUSTER_POLL_MS, Math.max(0, startedAt + ms - Date.now())));
      }
    } finally {
      process.kill(victim.pid, 'SIGCONT');
      victim.frozen = false;
    }
    const frozenMs = Date.now() - startedAt;
    await this.waitFor(`convergence after master ${victim.port} was frozen for ${ms} ms`, () => this.problems(true));
    const demoted = !(await this.isMaster(victim));
    const master = (await this.shards()).find((s) => s.slots[0]?.[0] === shard.slots[0]?.[0])?.master;
    return this.report('freeze', node, startedAt, {
      demoted,
      frozenMs,
      ...(promotedAfterMs !== undefined ? { promotedAfterMs } : {}),
      ...(master ? { master: { port: master.port, id: master.id } } : {}),
    });
  }

  async failover(i: number): Promise<FaultReport> {
    const shard = await this.shard(i, 'failover');
    const victim = this.byId(shard.master.id);
    const heir = shard.replicas.find((r) => !r.killed && !r.frozen);
    if (!heir) throw new Error(`failover(${i}): master ${victim.port} has no running replica to take over`);
    const node = { port: victim.port, pid: victim.pid, id: victim.id };
    const startedAt = Date.now();
    await this.control.call(heir.port, ['CLUSTER', 'FAILOVER']);
    // A manual failover that cannot finish in Redis's own 5 s (the replica's offset not caught up
    // on a loaded machine) is given up by Redis without a word: ask again after that window.
    let askedAt = Date.now();
    await this.waitFor(`graceful failover of master ${victim.port} to replica ${heir.port}`, async () => {
      if (await this.promotedAmong([heir.id])) return [];
      if (Date.now() - askedAt > MANUAL_FAILOVER_RETRY_MS) {
        askedAt = Date.now();
        await this.control.call(heir.port, ['CLUSTER', 'FAILOVER']).catch(() => undefined);
      }
      return [`replica ${heir.port} is not a master yet`];
    });
    const promotedAfterMs = Date.now() - startedAt;
    await this.waitFor(`convergence after the failover of master ${victim.port}`, () => this.problems(true));
    const demoted = !(await this.isMaster(victim));
    return this.report('failover', node, startedAt, { promotedAfterMs, demoted, master: { port: heir.port, id: heir.id } });
  }

  async restartMasterEmpty(i: number): Promise<FaultReport> {
    const shard = await this.shard(i, 'restartMasterEmpty');
    const victim = this.byId(shard.master.id);
    if (shard.replicas.some((r) => !r.killed)) {
      throw new Error(`restartMasterEmpty(${i}): master ${victim.port} has a running replica, which would take over instead`);
    }
    const node = { port: victim.port, pid: victim.pid, id: victim.id };
    const startedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    victim.killed = true;
    await victim.server?.stop(); // reaps the process; its dir (nodes.conf) stays
    victim.server = await startRedisServer({ port: victim.port, dir: victim.dir, args: clusterNodeArgs(victim.busPort, this.nodeTimeoutMs) });
    victim.killed = false;
    await this.waitFor(`convergence after restarting master ${victim.port} empty`, () => this.problems(true));
    return this.report('restart', node, startedAt, { master: { port: victim.port, id: victim.id } });
  }

  async restartNode(port?: number): Promise<FaultReport> {
    const killed = this.procs.filter((p) => p.killed);
    const victim = port === undefined ? (killed.length === 1 ? killed[0] : undefined) : killed.find((p) => p.port === port);
    if (!victim) {
      throw new Error(
        `restartNode(${port ?? ''}): ${port === undefined ? `${killed.length} nodes are killed; name one by port` : `no killed node on port ${port}`}` +
          ` (killed: ${killed.map((p) => p.port).join(', ') || 'none'})`,
      );
    }
    const startedAt = Date.now();
    try {
      // Same port, bus port and nodes.conf: the node knows the cluster and learns it lost its
      // slots, and turns into a replica of the node that took them (an empty one: no persistence).
      victim.server = await startRedisServer({ port: victim.port, dir: victim.dir, args: clusterNodeArgs(victim.busPort, this.nodeTimeoutMs) });
      victim.killed = false;
    } catch (err) {
      if (!/in use/i.test(err instanceof Error ? err.message : String(err))) throw err;
      await this.rejoinAsNewNode(victim);
    }
    await this.waitFor(`convergence after restarting node ${victim.port}`, () => this.problems(true));
    return this.report('restart', { port: victim.port, pid: victim.pid, id: victim.id }, startedAt);
  }

  /** Someone took the killed node's port: start a fresh node elsewhere and make it a replica. */
  private async rejoinAsNewNode(victim: ClusterNodeProcess): Promise<void> {
    const oldId = victim.id;
    await rm(victim.dir, { recursive: true, force: true });
    await mkdir(victim.dir, { recursive: true });
    victim.busPort = await getFreePort();
    victim.server = await startRedisServer({ dir: victim.dir, args: clusterNodeArgs(victim.busPort, this.nodeTimeoutMs) });
    victim.port = victim.server.port;
    victim.id = await this.control.text(victim.port, ['CLUSTER', 'MYID']);
    victim.killed = false;
    const anchor = this.running().find((p) => p !== victim);
    if (!anchor) throw new Error('restartNode: no running node to meet');
    await this.control.call(victim.port, ['CLUSTER', 'MEET', HOST, anchor.port, anchor.busPort]);
    await this.waitFor(`node ${victim.port} to learn the cluster`, async () => {
      const lines = await this.view(victim.port);
      return lines.some((l) => isMasterLine(l) && l.slots.length > 0 && !isFailing(l)) ? [] : [`${victim.port} knows no master yet`];
    });
    const shards = await this.shards();
    const poorest = shards.reduce((a, b) => (b.replicas.length < a.replicas.length ? b : a));
    await this.control.call(victim.port, ['CLUSTER', 'REPLICATE', poorest.master.id]);
    for (const p of this.running()) {
      if (p !== victim) await this.control.call(p.port, ['CLUSTER', 'FORGET', oldId]).catch(() => undefined);
    }
  }

  async reshard(from: number, to: number, slots: number | number[], opts: ReshardOptions = {}): Promise<ReshardReport> {
    const pauseOf = typeof opts.pauseMs === 'function' ? opts.pauseMs : () => (opts.pauseMs as number | undefined) ?? 0;
    const batchOf = typeof opts.batchKeys === 'function' ? opts.batchKeys : () => (opts.batchKeys as number | undefined) ?? 100;
    const migrateTimeoutMs = opts.migrateTimeoutMs ?? 5_000;
    const shards = await this.shards();
    const src = shards[from];
    const dst = shards[to];
    if (!src || !dst || from === to) {
      throw new RangeError(`reshard(${from}, ${to}): need two different masters among 0-${shards.length - 1}`);
    }
    const owned: number[] = [];
    for (const [a, b] of src.slots) for (let s = a; s <= b; s++) owned.push(s);
    let list: number[];
    if (typeof slots === 'number') {
      if (!Number.isInteger(slots) || slots < 1 || slots > owned.length) {
        throw new RangeError(`reshard: master ${from} (${src.master.port}) serves ${owned.length} slots, cannot move ${slots}`);
      }
      list = owned.slice(0, slots);
    } else {
      const mine = new Set(owned);
      const foreign = slots.filter((s) => !mine.has(s));
      if (foreign.length > 0) throw new RangeError(`reshard: slots ${foreign.slice(0, 10).join(', ')} are not served by master ${from} (${src.master.port})`);
      list = [...new Set(slots)];
    }
    const others = shards.filter((s) => s !== src && s !== dst).map((s) => s.master);
    const node = { port: src.master.port, pid: src.master.pid, id: src.master.id };
    const startedAt = Date.now();
    const windows: SlotWindow[] = [];
    let keys = 0;
    const moveSlot = async (slot: number) => {
      const pauseMs = pauseOf(slot);
      await this.control.call(dst.master.port, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', src.master.id]);
      await this.control.call(src.master.port, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', dst.master.id]);
      const start = Date.now();
      let moved = 0;
      const count = Number(await this.control.call(src.master.port, ['CLUSTER', 'COUNTKEYSINSLOT', slot]));
      const batchKeys = Math.max(1, Math.floor(batchOf(slot, count)));
      if (pauseMs > 0) await sleep(pauseMs);
      let batch = (await this.control.call(src.master.port, ['CLUSTER', 'GETKEYSINSLOT', slot, batchKeys])) as string[];
      while (batch.length > 0) {
        await this.migrate(src.master.port, dst.master.port, batch, migrateTimeoutMs, slot);
        moved += batch.length;
        batch = (await this.control.call(src.master.port, ['CLUSTER', 'GETKEYSINSLOT', slot, batchKeys])) as string[];
        if (batch.length > 0 && pauseMs > 0) await sleep(pauseMs);
      }
      // The target first, so the slot is never left without an owner that knows it.
      await this.control.call(dst.master.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', dst.master.id]);
      await this.control.call(src.master.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', dst.master.id]);
      for (const m of others) await this.control.call(m.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', dst.master.id]).catch(() => undefined);
      windows.push({ slot, start, end: Date.now(), keys: moved });
      keys += moved;
    };
    let next = 0;
    const lanes = Math.min(Math.max(1, Math.floor(opts.parallel ?? 1)), list.length);
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < list.length) await moveSlot(list[next++] as number);
      }),
    );
    await this.waitFor(`convergence after moving ${list.length} slots from ${src.master.port} to ${dst.master.port}`, () => this.problems(true));
    return {
      ...this.report('reshard', node, startedAt, { master: { port: src.master.port, id: src.master.id } }),
      kind: 'reshard',
      target: { port: dst.master.port, id: dst.master.id },
      slots: list,
      keys,
      windows,
    };
  }

  private async migrate(srcPort: number, dstPort: number, batch: string[], timeoutMs: number, slot: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.control.call(srcPort, ['MIGRATE', HOST, dstPort, '', 0, timeoutMs, 'KEYS', ...batch]);
        return;
      } catch (err) {
        // BUSYKEY would mean the target already has a key of a slot it is only importing: a bug
        // to report, never to paper over with REPLACE.
        if (attempt >= 3 || /BUSYKEY/.test(errorMessage(err))) {
          throw new Error(`reshard: MIGRATE of ${batch.length} keys of slot ${slot} from ${srcPort} to ${dstPort} failed: ${errorMessage(err)}`);
        }
        await sleep(200);
      }
    }
  }

  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      for (const p of this.procs) {
        if (p.frozen && !p.killed) {
          try {
            process.kill(p.pid, 'SIGCONT');
          } catch {
            // gone already
          }
          p.frozen = false;
        }
      }
      this.control.close();
      await Promise.all(this.procs.map((p) => p.server?.stop()));
      await rm(this.baseDir, { recursive: true, force: true });
      liveClusterDirs.delete(this.baseDir);
    })());
  }
}

const liveClusterDirs = new Set<string>();
let clusterExitHookInstalled = false;

/**
 * Start a Redis Cluster from `redis-server` binaries on free 127.0.0.1 ports: `masters`
 * (default 3) masters with `replicas` (default 0) replicas each, `cluster-node-timeout`
 * `nodeTimeoutMs` (default 2 s), no persistence. Resolves once every node reports
 * `cluster_state:ok`, knows all the others, and every replica is in sync. `nodes` lists every
 * node (masters first, as created); `stop()` stops them all by pid. The fault helpers
 * ({@link ManagedRedisCluster}) need replicas.
 *
 * @example
 * const c = await startRedisCluster({ masters: 3, replicas: 1 });
 * const client = new Cluster(c.nodes);
 * await c.killMaster(0); // returns once a replica took over
 * await c.restartNode(); // the killed node rejoins as a replica
 * await client.quit(); await c.stop();
 */
export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<ManagedRedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 2_000;
  const settleTimeoutMs = opts.settleTimeoutMs ?? 60_000;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(`a Redis Cluster needs at least 3 masters (got ${masters})`);
  }
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be a non-negative integer (got ${replicas})`);
  if (!Number.isInteger(nodeTimeoutMs) || nodeTimeoutMs < 100) throw new Error(`nodeTimeoutMs must be an integer >= 100 (got ${nodeTimeoutMs})`);
  const baseDir = await mkdtemp(join(tmpdir(), 'proxystore-redis-cluster-'));
  liveClusterDirs.add(baseDir);
  if (!clusterExitHookInstalled) {
    clusterExitHookInstalled = true;
    // The servers themselves are killed by trackChild's hook; their dirs are ours.
    process.on('exit', () => {
      for (const d of liveClusterDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  const procs: ClusterNodeProcess[] = [];
  const cluster = new ManagedCluster(procs, baseDir, replicas, nodeTimeoutMs, settleTimeoutMs);
  const control = new ClusterControl();
  try {
    const total = masters * (1 + replicas);
    for (let i = 0; i < total; i++) {
      const dir = join(baseDir, `node-${i}`);
      await mkdir(dir);
      const busPort = await getFreePort();
      const server = await startRedisServer({ dir, args: clusterNodeArgs(busPort, nodeTimeoutMs) });
      const proc = new ClusterNodeProcess(server.port, busPort, dir);
      proc.server = server;
      proc.id = String(await control.call(server.port, ['CLUSTER', 'MYID']));
      procs.push(proc);
    }
    await redisCli(
      ['--cluster', 'create', ...procs.map((p) => `${HOST}:${p.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      60_000,
    );
    await cluster.waitConverged({ fullReplicas: true });
  } catch (err) {
    await cluster.stop();
    throw err;
  } finally {
    control.close();
  }
  return cluster;
}
