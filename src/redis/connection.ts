/**
 * How the clients a connector creates behave when Redis is unreachable.
 *
 * ioredis, by default, keeps a command made while the connection is down in
 * its offline queue and writes it whenever the connection comes back, and it
 * resends the commands that were on a socket that died. Both happen even
 * after the caller was told the command failed (its `commandTimeout` fired):
 * a `put` made while Redis was down failed after 10 s, then its SET was
 * written, without a TTL, when Redis came up. And the caller only learnt "no
 * reply within the command timeout", not why.
 *
 * The guard installed here on a client we create (never on yours) keeps
 * ioredis's machinery but bounds it:
 *
 * - A command made while there is no connection waits in ioredis's offline
 *   queue for the next connection attempt only: it is written if that attempt
 *   succeeds, and fails as soon as it fails, naming the error
 *   (`connect ECONNREFUSED 127.0.0.1:6399`). So a call made while Redis is
 *   down fails within one reconnect delay (ioredis's default backoff is at
 *   most 2 s), not after the command timeout; a call made while Redis
 *   restarts succeeds if Redis is back by the next attempt.
 * - A command whose caller already got its answer (a reply, a timeout, an
 *   error) is never written again: ioredis's offline-queue flush and its
 *   resend of unfulfilled commands after a reconnect pass through the guard,
 *   which drops settled commands. Unsettled commands are still resent, which
 *   is what lets a consume whose reply was lost get its value (the scripts are
 *   safe to run twice).
 * - A timeout names the connection's state: "the connection is down:
 *   connect ECONNREFUSED ..." or "sent, no reply".
 *
 * A command that was written before its timeout fired may still run on the
 * server (Redis was slow, not down): no client can take back bytes it sent.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';

/** A command as ioredis passes it to `sendCommand` (the parts used here). */
interface Command {
  name: string;
  isResolved: boolean;
  reject: (err: Error) => void;
  promise: Promise<unknown>;
  /** The promise whose caller got an answer (a command may be given a new promise: see {@link settled}). */
  [kSettled]?: Promise<unknown>;
  /** The promise whose rejection is watched. */
  [kWatched]?: Promise<unknown>;
  [kWritten]?: true;
}
type SendCommand = (...args: unknown[]) => unknown;

const kSettled = Symbol('proxystore-redis.settled');
const kWatched = Symbol('proxystore-redis.watched');
const kWritten = Symbol('proxystore-redis.written');

/** A connection error as ioredis or Node reports it. */
interface SocketError extends Error {
  code?: string;
  address?: string;
  port?: number;
}

/**
 * A command refused or failed because the connection is down; its message
 * names the connection error. `errorFromReply` keeps the message as it is.
 */
export class ConnectionDownError extends Error {
  /** Whether the command was written to a socket before it failed. */
  readonly sent: boolean;
  constructor(message: string, sent: boolean) {
    super(message);
    this.name = 'ConnectionDownError';
    this.sent = sent;
  }
}

/** `connect ECONNREFUSED 127.0.0.1:6399`, with the code added when the message lacks it. */
export function describeError(err: SocketError): string {
  let text = err.message || String(err);
  if (err.code && !text.includes(err.code)) text = `${err.code}: ${text}`;
  if (err.address && !text.includes(err.address)) text += ` (${err.address}${err.port ? `:${err.port}` : ''})`;
  return text;
}

function ago(at: number): string {
  return `${((Date.now() - at) / 1000).toFixed(1)} s ago`;
}

/** The guard of one client (and, for a Cluster, of its node connections). */
class Guard {
  status: () => string;
  lastError: { message: string; at: number } | undefined;
  /** Commands waiting in ioredis's offline queue for a connection being opened. */
  private readonly waiting = new Set<Command>();

  constructor(
    readonly client: Redis | Cluster,
    private readonly commandTimeoutMs: number,
  ) {
    this.status = () => client.status;
    const isCluster = (client as { isCluster?: boolean }).isCluster === true;
    client.on('ready', () => {
      this.lastError = undefined;
      this.waiting.clear();
    });
    client.on('error', (err: SocketError) => this.failed(err));
    if (isCluster) {
      const cluster = client as Cluster;
      // A node's error alone does not fail waiting commands (other nodes may
      // answer); it is remembered for the messages.
      cluster.on('node error', (err: SocketError) => {
        if (cluster.status !== 'ready') this.lastError = { message: describeError(err), at: Date.now() };
      });
      // Node connections are made by the cluster: drop settled commands there too.
      cluster.on('+node', (node: Redis) => wrap(node, (send, command, args) => (settled(command) ? command.promise : send(...args))));
    }
    wrap(client, (send, command, args) => this.send(send, command, args));
  }

  private failed(err: SocketError): void {
    this.lastError = { message: describeError(err), at: Date.now() };
    if (this.waiting.size === 0) return;
    const down = this.downError(false);
    for (const command of [...this.waiting]) command.reject(down);
    this.waiting.clear();
  }

  downError(sent: boolean): ConnectionDownError {
    const last = this.lastError;
    const cause = last ? `${last.message} (${ago(last.at)})` : `connection ${this.status()}`;
    return new ConnectionDownError(
      `Redis is unreachable: ${cause}; ${sent ? 'the command was sent before the connection failed and may or may not have run' : 'the command was not sent'}`,
      sent,
    );
  }

  private send(send: SendCommand, command: Command, args: unknown[]): unknown {
    if (settled(command)) return command.promise;
    this.watch(command);
    const status = this.status();
    if (status === 'ready') {
      this.waiting.delete(command);
      command[kWritten] = true;
      return send(...args);
    }
    if (status === 'end') return send(...args);
    // No connection: ioredis queues it until ready; the next failed attempt rejects it.
    this.waiting.add(command);
    return send(...args);
  }

  /** Mark the command settled when its promise settles, and name the cause of a timeout. */
  private watch(command: Command): void {
    const promise = command.promise;
    // Once per promise: the Cluster wraps `reject` in its own retry handler after us.
    if (command[kWatched] === promise) return;
    command[kWatched] = promise;
    const reject = command.reject;
    command.reject = (err: Error) => {
      command[kSettled] = promise;
      this.waiting.delete(command);
      reject(err?.message === 'Command timed out' ? this.timeoutError(command) : err);
    };
  }

  private timeoutError(command: Command): Error {
    const seconds = `${this.commandTimeoutMs} ms`;
    if (this.status() !== 'ready' || this.lastError !== undefined) {
      const down = this.downError(command[kWritten] === true);
      return new ConnectionDownError(`no reply within the command timeout (${seconds}): ${down.message}`, down.sent);
    }
    return new Error(`Command timed out: no reply within the command timeout (${seconds}) from a connected Redis (busy or stuck?); the command was sent and may or may not have run`);
  }
}

/**
 * Whether the caller of this command got its answer. Compared by promise: a
 * cluster pipeline retries a command after MOVED/ASK by giving it a new
 * promise (`initPromise`), and then it is a fresh command.
 */
function settled(command: Command): boolean {
  return command.isResolved === true || (command[kSettled] !== undefined && command[kSettled] === command.promise);
}

function wrap(client: Redis | Cluster, handler: (send: SendCommand, command: Command, args: unknown[]) => unknown): void {
  const target = client as unknown as { sendCommand: SendCommand };
  const original = target.sendCommand;
  const send: SendCommand = (...args) => original.apply(client, args);
  target.sendCommand = function (this: unknown, ...args: unknown[]) {
    return handler(send, args[0] as Command, args);
  } as SendCommand;
}

const guards = new WeakMap<object, Guard>();

/** Install the guard on a client the connector created (once). */
export function guardClient(client: Redis | Cluster, commandTimeoutMs: number): void {
  if (!guards.has(client)) guards.set(client, new Guard(client, commandTimeoutMs));
}

/**
 * Resolves when the client is ready; rejects with an error naming the
 * connection error when the next connection attempt fails. Starts the
 * connection of a lazy client.
 */
export function whenReady(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'end') return Promise.reject(new ConnectionDownError('Redis connection is closed (the connector was closed)', false));
  return new Promise<void>((resolveReady, reject) => {
    const cleanup = () => {
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    const onReady = () => {
      cleanup();
      resolveReady();
    };
    const onError = (err: SocketError) => {
      cleanup();
      reject(new ConnectionDownError(`Redis is unreachable: ${describeError(err)}`, false));
    };
    const onEnd = () => {
      cleanup();
      reject(new ConnectionDownError('Redis connection ended before it was ready', false));
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
    if (client.status === 'wait') client.connect().catch(() => undefined);
  });
}
