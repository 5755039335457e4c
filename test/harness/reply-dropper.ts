/**
 * A TCP proxy in front of one Redis that loses replies on purpose: it lets a
 * chosen command run, throws its reply away and cuts the client's
 * connection. ioredis then reconnects and resends every command that had no
 * reply yet (its default `autoResendUnfulfilledCommands`), so the command
 * runs a second time with the same arguments: exactly what a lost reply on a
 * real network does. Tests use it to prove that each operation is safe to
 * resend.
 *
 *   const dropper = await startReplyDropper(server.url);
 *   const store = new Store('s', new RedisConnector({ url: dropper.url, namespace }));
 *   const dropped = dropper.dropNextReply((args) => args[0] === 'evalsha');
 *   await release(borrowed);   // runs, reply lost, resent, runs again
 *   expect((await dropped).args[0]).toBe('evalsha');
 *   await dropper.close();
 *
 * Loopback only. Commands are matched on their arguments decoded as UTF-8
 * (at most 200 characters each; binary values come out garbled, which is
 * fine for matching on a command name, a script SHA or a key).
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A command as the proxy saw it: its arguments, lowercased command name first. */
export interface SeenCommand {
  args: string[];
}

export interface ReplyDropper {
  /** `redis://127.0.0.1:<port>`: connect here instead of to Redis. */
  url: string;
  host: string;
  port: number;
  /**
   * Lose the reply of the next command (from any connection) whose arguments
   * satisfy `match`: the command reaches Redis and runs, its reply (and any
   * reply after it on that connection) is discarded, and the client's
   * connection is cut. Resolves with the command once that has happened.
   * `times` (default 1): how many matching commands lose their reply in a
   * row (a resend that also loses its reply).
   */
  dropNextReply(match: (args: string[]) => boolean, times?: number): Promise<SeenCommand>;
  /** Every command forwarded so far, in order (all connections). */
  readonly seen: readonly SeenCommand[];
  /** How many client connections were accepted so far. */
  readonly connections: number;
  /** Cut every connection now (no reply is held back). */
  cutAll(): void;
  /** Refuse new connections (accept and close them at once) for the next `ms` milliseconds: Redis "down" for the client. */
  refuseConnections(ms: number): void;
  /** Stop accepting and cut every connection. */
  close(): Promise<void>;
}

const MAX_ARG_CHARS = 200;

/**
 * The end of the RESP value that starts at `at` in `buf`, or -1 when the
 * buffer does not hold all of it yet.
 */
function respEnd(buf: Buffer, at: number): number {
  if (at >= buf.length) return -1;
  const lineEnd = buf.indexOf('\r\n', at);
  if (lineEnd < 0) return -1;
  const type = String.fromCharCode(buf[at] as number);
  const n = Number(buf.toString('latin1', at + 1, lineEnd));
  switch (type) {
    case '+':
    case '-':
    case ':':
      return lineEnd + 2;
    case '$': {
      if (n < 0) return lineEnd + 2;
      const end = lineEnd + 2 + n + 2;
      return end <= buf.length ? end : -1;
    }
    case '*': {
      let pos = lineEnd + 2;
      for (let i = 0; i < n; i++) {
        pos = respEnd(buf, pos);
        if (pos < 0) return -1;
      }
      return pos;
    }
    default:
      throw new Error(`reply-dropper: unexpected RESP type byte ${JSON.stringify(type)} at ${at}`);
  }
}

/** The arguments of a client command (an array of bulk strings), shortened for matching. */
function commandArgs(buf: Buffer, start: number, end: number): string[] {
  const args: string[] = [];
  let pos = buf.indexOf('\r\n', start) + 2;
  while (pos < end) {
    const lineEnd = buf.indexOf('\r\n', pos);
    const len = Number(buf.toString('latin1', pos + 1, lineEnd));
    const from = lineEnd + 2;
    args.push(buf.toString('utf8', from, from + Math.min(len, MAX_ARG_CHARS)));
    pos = from + len + 2;
  }
  if (args.length > 0) args[0] = (args[0] as string).toLowerCase();
  return args;
}

interface Armed {
  match: (args: string[]) => boolean;
  left: number;
  resolve: (cmd: SeenCommand) => void;
}

export async function startReplyDropper(redisUrl: string): Promise<ReplyDropper> {
  const target = new URL(redisUrl);
  const upstreamHost = target.hostname;
  const upstreamPort = Number(target.port || 6379);
  const seen: SeenCommand[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let armed: Armed | undefined;
  let refuseUntil = 0;

  const server: Server = createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    connections++;
    const upstream = createConnection({ host: upstreamHost, port: upstreamPort });
    sockets.add(client);
    sockets.add(upstream);
    // Commands sent on this connection whose reply has not come back yet;
    // `drop` marks the one whose reply is to be lost.
    const pending: { cmd: SeenCommand; drop: boolean }[] = [];
    let fromClient: Buffer = Buffer.alloc(0);
    let fromServer: Buffer = Buffer.alloc(0);
    let cut = false;
    let dropping = false;
    const cutBoth = () => {
      if (cut) return;
      cut = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', cutBoth);
    upstream.on('close', cutBoth);
    client.on('error', cutBoth);
    upstream.on('error', cutBoth);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));

    client.on('data', (chunk: Buffer) => {
      fromClient = fromClient.length === 0 ? chunk : Buffer.concat([fromClient, chunk]);
      let pos = 0;
      for (let end = respEnd(fromClient, pos); end >= 0; end = respEnd(fromClient, pos)) {
        const cmd = { args: commandArgs(fromClient, pos, end) };
        seen.push(cmd);
        let drop = false;
        if (armed && armed.match(cmd.args)) {
          drop = true;
          const a = armed;
          a.left--;
          if (a.left <= 0) {
            armed = undefined;
            upstream.once('close', () => a.resolve(cmd));
          }
        }
        pending.push({ cmd, drop });
        pos = end;
      }
      // Forward whole commands only, so a cut never leaves half a command in Redis.
      if (pos > 0) upstream.write(fromClient.subarray(0, pos));
      fromClient = fromClient.subarray(pos);
    });

    upstream.on('data', (chunk: Buffer) => {
      if (dropping) return;
      fromServer = fromServer.length === 0 ? chunk : Buffer.concat([fromServer, chunk]);
      let pos = 0;
      for (let end = respEnd(fromServer, pos); end >= 0; end = respEnd(fromServer, pos)) {
        const entry = pending.shift();
        if (entry?.drop) {
          // The command ran; its reply, and whatever follows, is lost with the connection.
          dropping = true;
          if (pos > 0) client.write(fromServer.subarray(0, pos), cutBoth);
          else cutBoth();
          fromServer = Buffer.alloc(0);
          return;
        }
        pos = end;
      }
      if (pos > 0) client.write(fromServer.subarray(0, pos));
      fromServer = fromServer.subarray(pos);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('reply-dropper: no TCP address');
  const port = address.port;

  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    seen,
    get connections() {
      return connections;
    },
    dropNextReply(match, times = 1) {
      if (armed) throw new Error('reply-dropper: already waiting to drop a reply');
      return new Promise<SeenCommand>((resolve) => {
        armed = { match, left: times, resolve };
      });
    },
    cutAll() {
      for (const s of sockets) s.destroy();
    },
    refuseConnections(ms) {
      refuseUntil = Date.now() + ms;
    },
    async close() {
      armed = undefined;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
