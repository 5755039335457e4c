/**
 * A small raw RESP2 connection for chunk transfers only (docs/large-objects.md,
 * "The raw chunk connection").
 *
 * ioredis costs a large value two or three copies and a burst of garbage:
 * a command with a Buffer argument is serialized into one new Buffer (a copy
 * of the chunk), and a bulk reply that spans several socket reads is kept as
 * those reads (64 KB Buffers) and then concatenated into redis-parser's
 * module-wide pool (grown to 2-3x the reply, and kept alive by the slice
 * handed out), from which the chunk code copies it again. For a 256 MB get
 * that was about 1.3x the payload of RSS growth, and for a 1 GB stream well
 * over 100 MB: garbage that V8 collects late and glibc keeps.
 *
 * A {@link RawLink} is a TCP (or TLS) socket that speaks just enough RESP2
 * for the chunk commands (`HGET`, `HSET` + `PEXPIRE`, `MULTI`/`EXEC`):
 *
 * - replies are read into one static 64 KB buffer (net.Socket `onread`; on
 *   TLS, the decrypted Buffers of the TLS layer), and a chunk's payload
 *   bytes are copied straight from it to where they belong (the caller's
 *   destination Buffer): no Buffer per reply, no concat;
 * - a command is written as its header, the chunk itself and its CRLF,
 *   corked together (one writev), without copying the chunk.
 *
 * It is opened from the ioredis client's own options (host, port, username,
 * password, db, tls; on a Cluster, the master that owns the key's slot in
 * the client's slot map, with that node's options). Anything it does not do
 * is left to ioredis: a connection kind it does not know (a Unix socket,
 * Sentinel, a custom connector, a key prefix), a reply that is not the
 * expected success (an error, MOVED/ASK, nil, a chunk of another length),
 * and a lost, refused or timed-out connection. Every such case answers
 * `false` (or rejects with {@link RawUnavailable}), and the caller sends the
 * very same command through ioredis, whose reply it handles as before. The
 * commands are idempotent (HGET; HSET of the same bytes to the same field
 * plus PEXPIRE), so sending one again after a lost connection is safe.
 *
 * @module
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import createDebug from 'debug';

const log = createDebug('proxystore:redis');

/** Bytes of the static read buffer of a link. */
const READ_BUFFER_BYTES = 64 * 1024;
/** How long a link that could not be opened is not tried again (ms). */
const RETRY_AFTER_MS = 10_000;

/**
 * The raw path cannot carry this command now: send it through ioredis. With
 * `timedOutMs`, the link got no reply for the command timeout: see
 * {@link RawTransfers.readInto}.
 */
export class RawUnavailable extends Error {
  constructor(
    message: string,
    readonly timedOutMs?: number,
  ) {
    super(message);
  }
}

/**
 * The error of a raw chunk command the server did not answer within the
 * command timeout: the very text of the ioredis path's timeout
 * (src/redis/connection.ts), so the caller's fault handling types it the same
 * way (`ClusterReconfiguringError` on a Cluster, else `RedisOperationError`).
 */
function timeoutError(ms: number): Error {
  return new Error(`Command timed out: no reply within the command timeout (${ms} ms) from a connected Redis (busy or stuck?); the command was sent and may or may not have run`);
}

/** Where a bulk reply's payload bytes go: bytes [from, to) of it to `dest` at `at`. */
interface Into {
  dest: Buffer;
  at: number;
  from: number;
  to: number;
  /** The payload length expected; any other is not copied. */
  want: number;
}

/** One reply awaited, in order. */
interface Pending {
  into?: Into;
  /** A reply value (string, number, null, Buffer, array, Error), or `true` for a bulk copied into `into`. */
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** What a link connects with (from the ioredis options). */
export interface LinkOptions {
  host: string;
  port: number;
  family?: number;
  username?: string;
  password?: string;
  db?: number;
  /** TLS options as ioredis gives them to `tls.connect` (none: plain TCP). */
  tls?: tls.ConnectionOptions;
  connectTimeoutMs: number;
}

const COPIED = Symbol('copied');

/** A raw RESP2 connection to one server (see the module comment). */
export class RawLink {
  private readonly socket: net.Socket;
  private readonly pending: Pending[] = [];
  private dead: Error | undefined;
  private connected = false;
  private readonly ready: Promise<void>;
  // Parser state.
  private line: Buffer[] = [];
  private bulkLen = -1;
  private bulkPos = 0;
  private bulkInto: Into | undefined;
  private bulkSmall: Buffer | undefined;
  private bulkSkip = false;
  private readonly arrays: { items: unknown[]; left: number }[] = [];

  constructor(
    readonly options: LinkOptions,
    timeoutMs: number,
    private readonly onClose: (link: RawLink, connected: boolean) => void,
  ) {
    const address = { host: options.host, port: options.port, ...(options.family ? { family: options.family } : {}) };
    if (options.tls) {
      // TLS: decrypted bytes come as Buffers of the TLS layer's (no `onread`), copied from there
      // into place all the same.
      this.socket = tls.connect({ ...address, ...options.tls });
      this.socket.setNoDelay(true);
      this.socket.on('data', (bytes: Buffer) => this.onBytes(bytes.length, bytes));
    } else {
      const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      this.socket = net.connect({
        ...address,
        noDelay: true,
        onread: {
          buffer,
          callback: (n: number, buf: Uint8Array) => {
            this.onBytes(n, buf as Buffer);
            return true;
          },
        },
      });
    }
    this.socket.unref();
    this.socket.setTimeout(timeoutMs, () => {
      // No bytes either way for the command timeout while commands wait: give up on this link.
      if (this.pending.length > 0) this.fail(new RawUnavailable(`no reply within ${timeoutMs} ms`, timeoutMs));
    });
    const connectTimer = setTimeout(() => this.fail(new RawUnavailable('connect timed out')), options.connectTimeoutMs);
    connectTimer.unref();
    this.socket.once(options.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      this.connected = true;
    });
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => {
      clearTimeout(connectTimer);
      this.fail(new RawUnavailable('connection closed'));
    });
    // AUTH and SELECT first; nothing else is sent before they answered OK.
    const hello: Promise<unknown>[] = [];
    if (options.password) {
      hello.push(this.send(options.username ? ['AUTH', options.username, options.password] : ['AUTH', options.password], 1)[0] as Promise<unknown>);
    }
    if (options.db) hello.push(this.send(['SELECT', String(options.db)], 1)[0] as Promise<unknown>);
    // AUTH/SELECT unanswered: the chunk command was not sent (fall back, whatever the cause).
    this.ready = Promise.all(hello).catch((err: Error) => Promise.reject(new RawUnavailable(err.message))).then((replies) => {
      // As ioredis: a password the server does not ask for is no refusal.
      const refused = replies.find((r) => r instanceof Error && !/no password is set|without any password configured/.test(r.message));
      if (refused) {
        const err = new RawUnavailable(`refused: ${(refused as Error).message}`);
        this.fail(err);
        throw err;
      }
    });
    this.ready.catch(() => undefined);
  }

  /** Whether the link can take commands (not closed or failed). */
  get alive(): boolean {
    return this.dead === undefined;
  }

  /** The local port of the socket (tests find the connection by it). @internal */
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  /** Resolves once AUTH/SELECT answered OK; rejects with {@link RawUnavailable} otherwise. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /**
   * Bulk reply of `HGET key field` with `want` payload bytes, bytes [from, to)
   * copied to `dest` at `at`. True when copied; false for any other reply
   * (nil, an error, MOVED, another length): nothing usable was copied.
   * Rejects with {@link RawUnavailable} (or a socket error) when the link failed.
   */
  async hgetInto(key: string, field: string, into: Into): Promise<boolean> {
    await this.ready;
    const [reply] = this.send(['HGET', key, field], 1, into);
    return (await reply) === COPIED;
  }

  /**
   * `HSET key field chunk [h header]` and `PEXPIRE key ttlMs`: in a
   * MULTI/EXEC when `header` is given (the first chunk creates the hash with
   * its TTL), else plainly one after the other. True when every reply is
   * the expected success; false otherwise.
   */
  async hsetChunk(key: string, field: string, chunk: Buffer, header: Buffer | undefined, ttlMs: number): Promise<boolean> {
    await this.ready;
    const ttl = String(ttlMs);
    if (header) {
      const replies = this.sendMany([['MULTI'], ['HSET', key, field, chunk, 'h', header], ['PEXPIRE', key, ttl], ['EXEC']]);
      const [multi, queued1, queued2, exec] = await Promise.all(replies);
      if (multi !== 'OK' || queued1 !== 'QUEUED' || queued2 !== 'QUEUED' || !Array.isArray(exec) || exec.length !== 2) return false;
      return typeof exec[0] === 'number' && exec[1] === 1;
    }
    const [hset, pexpire] = await Promise.all(this.sendMany([['HSET', key, field, chunk], ['PEXPIRE', key, ttl]]));
    return typeof hset === 'number' && pexpire === 1;
  }

  /** Close the socket; what waits is rejected with {@link RawUnavailable}. */
  close(): void {
    this.fail(new RawUnavailable('closed'));
  }

  private sendMany(commands: (string | Buffer)[][]): Promise<unknown>[] {
    if (this.dead) return commands.map(() => Promise.reject(this.unsent()));
    this.socket.cork();
    try {
      return commands.map((c) => this.send(c, 1)[0] as Promise<unknown>);
    } finally {
      process.nextTick(() => this.socket.uncork());
    }
  }

  /** Write one command (its Buffer arguments not copied); `replies` promises, in order. */
  private send(args: (string | Buffer)[], replies: number, into?: Into): Promise<unknown>[] {
    if (this.dead) return [Promise.reject(this.unsent())];
    const out: Promise<unknown>[] = [];
    for (let i = 0; i < replies; i++) {
      out.push(
        new Promise((resolve, reject) => {
          this.pending.push({ ...(into && i === 0 ? { into } : {}), resolve, reject });
        }),
      );
    }
    this.socket.ref();
    let head = `*${args.length}\r\n`;
    const corked = this.socket.writableCorked > 0;
    if (!corked) this.socket.cork();
    for (const arg of args) {
      if (typeof arg === 'string') {
        head += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
      } else {
        this.socket.write(`${head}$${arg.length}\r\n`);
        this.socket.write(arg);
        head = '\r\n';
      }
    }
    this.socket.write(head);
    if (!corked) process.nextTick(() => this.socket.uncork());
    return out;
  }

  /** The error of a command not sent because the link is dead: never a timeout (it was not sent). */
  private unsent(): RawUnavailable {
    return new RawUnavailable((this.dead as Error).message);
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err instanceof RawUnavailable ? err : new RawUnavailable(err.message);
    this.socket.destroy();
    const waiting = this.pending.splice(0);
    for (const p of waiting) p.reject(this.dead);
    this.onClose(this, this.connected);
  }

  /** The socket read `n` bytes into `buf` (the static buffer). */
  private onBytes(n: number, buf: Buffer): void {
    try {
      let i = 0;
      while (i < n && !this.dead) {
        if (this.bulkLen >= 0) {
          i += this.onBulkBytes(buf, i, n);
          continue;
        }
        const nl = buf.indexOf(10, i);
        if (nl < 0 || nl >= n) {
          this.line.push(Buffer.from(buf.subarray(i, n)));
          return;
        }
        this.line.push(buf.subarray(i, nl));
        const text = (this.line.length === 1 ? (this.line[0] as Buffer) : Buffer.concat(this.line)).toString('latin1');
        this.line = [];
        i = nl + 1;
        this.onLine(text.endsWith('\r') ? text.slice(0, -1) : text);
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  /** Payload (and trailing CRLF) bytes of the current bulk reply; returns how many were taken. */
  private onBulkBytes(buf: Buffer, i: number, n: number): number {
    const take = Math.min(n - i, this.bulkLen + 2 - this.bulkPos);
    const start = this.bulkPos;
    const end = Math.min(start + take, this.bulkLen);
    if (end > start) {
      const into = this.bulkInto;
      if (into) {
        const from = Math.max(start, into.from);
        const to = Math.min(end, into.to);
        if (to > from) buf.copy(into.dest, into.at + (from - into.from), i + (from - start), i + (to - start));
      } else if (this.bulkSmall) {
        buf.copy(this.bulkSmall, start, i, i + (end - start));
      }
    }
    this.bulkPos += take;
    if (this.bulkPos === this.bulkLen + 2) {
      const value = this.bulkInto ? COPIED : this.bulkSkip ? undefined : this.bulkSmall;
      this.bulkLen = -1;
      this.bulkPos = 0;
      this.bulkInto = undefined;
      this.bulkSmall = undefined;
      this.bulkSkip = false;
      this.deliver(value);
    }
    return take;
  }

  private onLine(line: string): void {
    const type = line[0];
    const rest = line.slice(1);
    switch (type) {
      case '+':
        return this.deliver(rest);
      case '-':
        return this.deliver(new Error(rest));
      case ':':
        return this.deliver(Number(rest));
      case '$': {
        const len = Number(rest);
        if (!Number.isSafeInteger(len) || len < -1) throw new Error(`bad bulk length ${rest}`);
        if (len === -1) return this.deliver(null);
        this.bulkLen = len;
        this.bulkPos = 0;
        const into = this.arrays.length === 0 ? this.pending[0]?.into : undefined;
        if (into) {
          if (len === into.want) this.bulkInto = into;
          else this.bulkSkip = true;
        } else if (len <= 1024 * 1024) {
          this.bulkSmall = Buffer.allocUnsafe(len);
        } else {
          this.bulkSkip = true;
        }
        return;
      }
      case '*': {
        const count = Number(rest);
        if (!Number.isSafeInteger(count) || count < -1) throw new Error(`bad array length ${rest}`);
        if (count === -1) return this.deliver(null);
        if (count === 0) return this.deliver([]);
        this.arrays.push({ items: [], left: count });
        return;
      }
      default:
        throw new Error(`unexpected reply type ${JSON.stringify(type)}`);
    }
  }

  private deliver(value: unknown): void {
    let v = value;
    for (;;) {
      const top = this.arrays[this.arrays.length - 1];
      if (!top) break;
      top.items.push(v);
      if (--top.left > 0) return;
      this.arrays.pop();
      v = top.items;
    }
    const p = this.pending.shift();
    if (!p) throw new Error('a reply nobody asked for');
    if (this.pending.length === 0) this.socket.unref();
    p.resolve(v);
  }
}

/** The ioredis options a link is made from (the subset read here). */
interface IoredisOptions {
  host?: string;
  port?: number;
  family?: number;
  path?: string | null;
  username?: string | null;
  password?: string | null;
  db?: number;
  tls?: unknown;
  sentinels?: unknown;
  Connector?: unknown;
  keyPrefix?: string;
  connectTimeout?: number;
  protocol?: number;
}

/** Why a client's options cannot be used for a link, or undefined when they can. */
function unsupported(o: IoredisOptions | undefined): string | undefined {
  if (!o) return 'no options';
  if (o.path) return 'a Unix socket';
  if (o.sentinels) return 'Sentinel';
  if (o.Connector) return 'a custom connector';
  if (o.keyPrefix) return 'a key prefix';
  if (o.protocol !== undefined && o.protocol !== 2) return `RESP${String(o.protocol)}`;
  if (typeof o.host !== 'string' || typeof o.port !== 'number') return 'no host and port';
  if ((o.password !== undefined && o.password !== null && typeof o.password !== 'string') || (o.username && typeof o.username !== 'string')) {
    return 'credentials that are not strings';
  }
  return undefined;
}

/** Counters of the raw path (tests and the bench read them). @internal */
export interface RawStats {
  /** Chunks read or written through a raw link. */
  raw: number;
  /** Chunk commands sent through ioredis after the raw path could not carry them. */
  fallbacks: number;
  /** Links opened. */
  opened: number;
}

/**
 * The raw links of one connector: one per server (per master on a
 * Cluster), opened on first use, closed by {@link close}.
 */
export class RawTransfers {
  private readonly links = new Map<string, RawLink>();
  private offUntil = 0;
  private closed = false;
  private why: string | undefined;
  readonly stats: RawStats = { raw: 0, fallbacks: 0, opened: 0 };

  constructor(
    private readonly client: Redis | Cluster,
    private readonly isCluster: boolean,
    private readonly timeoutMs: () => number,
  ) {}

  /** The link for `redisKey` (its slot's master on a Cluster), or undefined (use ioredis). */
  private linkFor(redisKey: string): RawLink | undefined {
    if (this.closed || this.why !== undefined || Date.now() < this.offUntil) return undefined;
    if (this.client.status !== 'ready') return undefined;
    let options: IoredisOptions | undefined;
    if (this.isCluster) {
      const cluster = this.client as Cluster;
      const clusterOptions = cluster.options as { keyPrefix?: string; redisOptions?: IoredisOptions };
      const master = cluster.slots[calculateSlot(redisKey)]?.[0];
      if (master === undefined) return undefined;
      const existing = this.links.get(master);
      if (existing) return existing;
      const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master);
      if (!node) return undefined;
      options = { ...(node.options as IoredisOptions), keyPrefix: clusterOptions.keyPrefix ?? (node.options as IoredisOptions).keyPrefix };
    } else {
      const existing = this.links.get('');
      if (existing) return existing;
      options = (this.client as Redis).options as IoredisOptions;
    }
    const why = unsupported(options);
    if (why !== undefined) {
      // The client's kind does not change: ioredis carries every chunk.
      this.why = why;
      log('raw chunk connection not used (%s): chunks go through ioredis', why);
      return undefined;
    }
    const o = options as IoredisOptions & { host: string; port: number };
    const name = this.isCluster ? `${o.host}:${o.port}` : '';
    const link = new RawLink(
      {
        host: o.host,
        port: o.port,
        ...(o.family ? { family: o.family } : {}),
        ...(o.username ? { username: o.username } : {}),
        ...(typeof o.password === 'string' ? { password: o.password } : {}),
        ...(o.db ? { db: o.db } : {}),
        ...(o.tls ? { tls: typeof o.tls === 'object' ? (o.tls as tls.ConnectionOptions) : {} } : {}),
        connectTimeoutMs: o.connectTimeout ?? 10_000,
      },
      this.timeoutMs(),
      (dead, connected) => {
        if (this.links.get(name) === dead) this.links.delete(name);
        if (!connected && !this.closed) this.pause(`${o.host}:${o.port} unreachable`);
      },
    );
    link.whenReady().catch((err: Error) => {
      if (!this.closed) this.pause(`${o.host}:${o.port}: ${err.message}`);
    });
    this.stats.opened++;
    this.links.set(name, link);
    return link;
  }

  /**
   * Chunk `field` of the hash `redisKey` (`want` bytes), bytes [from, to) of
   * it copied to `dest` at `at`, through a raw link. False when the raw path
   * could not (the caller reads it through ioredis and handles its reply).
   */
  async readInto(redisKey: string, field: string, dest: Buffer, at: number, from: number, to: number, want: number): Promise<boolean> {
    return this.carry(redisKey, 'read', (link) => link.hgetInto(redisKey, field, { dest, at, from, to, want }));
  }

  /** Refused (AUTH, SELECT) or unreachable: ioredis carries the chunks for a while. */
  private pause(why: string): void {
    this.offUntil = Date.now() + RETRY_AFTER_MS;
    log('raw chunk connection failed (%s): chunks go through ioredis for %d s', why, RETRY_AFTER_MS / 1000);
  }

  /** {@link RawLink.hsetChunk} through the key's link; false when the caller must send it through ioredis. */
  async writeChunk(stage: string, field: string, chunk: Buffer, header: Buffer | undefined, ttlMs: number): Promise<boolean> {
    return this.carry(stage, 'write', (link) => link.hsetChunk(stage, field, chunk, header, ttlMs));
  }

  /**
   * Run `op` on the link of `redisKey`: true when it carried the chunk;
   * false when the caller must send it through ioredis (no link, or a reply
   * or failure the raw path does not handle). A link silent for the whole
   * command timeout rejects instead: sending the chunk again through ioredis
   * would wait as long again (a frozen master: twice the command timeout),
   * so it fails as the ioredis path's own timeout does.
   */
  private async carry(redisKey: string, what: 'read' | 'write', op: (link: RawLink) => Promise<boolean>): Promise<boolean> {
    const link = this.linkFor(redisKey);
    if (!link) return false;
    try {
      if (await op(link)) {
        this.stats.raw++;
        return true;
      }
    } catch (err) {
      if (err instanceof RawUnavailable && err.timedOutMs !== undefined) throw timeoutError(err.timedOutMs);
      log('raw chunk %s failed (%s): through ioredis', what, (err as Error).message);
    }
    this.stats.fallbacks++;
    return false;
  }

  /** The local ports of the open links (tests kill them by address). @internal */
  localPorts(): number[] {
    return [...this.links.values()].flatMap((l) => (l.alive && l.localPort !== undefined ? [l.localPort] : []));
  }

  /** How many links are open. @internal */
  get open(): number {
    return this.links.size;
  }

  /** Close every link; none is opened after. */
  close(): void {
    this.closed = true;
    for (const link of [...this.links.values()]) link.close();
    this.links.clear();
  }
}
