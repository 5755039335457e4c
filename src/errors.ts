/**
 * Error classes. Every error the library throws on purpose extends
 * {@link ProxyStoreError}, carries a stable `code`, and names the key or
 * lifetime involved in its message.
 *
 * Lua scripts report rule violations as Redis error replies of the form
 * `PSR_<CODE> <message>`; {@link errorFromReply} turns those into these
 * classes, so there is exactly one place where that mapping lives.
 *
 * @module
 */
import { clusterFault, innerMessage, type ClusterFault, type FaultKind } from './redis/faults.js';

/** The plain-object form of an error, as produced by `toJSON()`. */
export interface ProxyStoreErrorJSON {
  name: string;
  code: string;
  message: string;
  key?: string;
  lifetime?: string;
  /** {@link ProxyResolveMissingKeyError.consumedBy}. */
  consumedBy?: ConsumedBy;
  /** {@link RedisOperationError.writtenKeys}. */
  writtenKeys?: string[];
  /** {@link ClusterReconfiguringError.mayHaveRun}. */
  mayHaveRun?: boolean;
}

/** Who consumed an ephemeral object (see {@link ProxyResolveMissingKeyError.consumedBy}). */
export interface ConsumedBy {
  pid?: number;
  host?: string;
  /** First stack frame of the consumer outside the library. */
  frame?: string;
  /** Milliseconds between the consume and the failed resolve (Redis server time). */
  agoMs?: number;
  /** For an object put with `reads: n` (n >= 2): n, all of which were read (this consumer took the last). */
  reads?: number;
}

/** Extra context an error can carry. */
export interface ErrorContext {
  key?: string;
  lifetime?: string;
  cause?: unknown;
  /** See {@link RedisOperationError.writtenKeys}. */
  writtenKeys?: readonly string[];
}

/**
 * Base class of every error raised by proxystore-redis.
 *
 * @example
 * ```ts
 * try {
 *   await resolve(proxy);
 * } catch (err) {
 *   if (err instanceof ProxyStoreError) console.error(err.code, err.message);
 * }
 * ```
 */
export class ProxyStoreError extends Error {
  /** Stable machine-readable code, e.g. `PROXY_RESOLVE_MISSING_KEY`. */
  static readonly code: string = 'PROXYSTORE_ERROR';
  readonly code: string;
  /** The store key involved, when there is one. */
  readonly key: string | undefined;
  /** The lifetime id involved, when there is one. */
  readonly lifetime: string | undefined;

  constructor(message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.code = (new.target as typeof ProxyStoreError).code;
    this.key = context.key;
    this.lifetime = context.lifetime;
  }

  /** A JSON-safe form that {@link ProxyStoreError.fromJSON} turns back into the same class. */
  toJSON(): ProxyStoreErrorJSON {
    const out: ProxyStoreErrorJSON = { name: this.name, code: this.code, message: this.message };
    if (this.key !== undefined) out.key = this.key;
    if (this.lifetime !== undefined) out.lifetime = this.lifetime;
    return out;
  }

  /**
   * Rebuild an error from its `toJSON()` form (for example after it crossed a
   * process boundary). Unknown codes give a plain `ProxyStoreError`.
   *
   * @example
   * ```ts
   * const err = ProxyStoreError.fromJSON(JSON.parse(text));
   * if (err instanceof ProxyResolveMissingKeyError) retry();
   * ```
   */
  static fromJSON(json: unknown): ProxyStoreError {
    if (json instanceof ProxyStoreError) return json;
    if (typeof json !== 'object' || json === null) {
      return new ProxyStoreError(`not a serialized ProxyStoreError: ${String(json)}`);
    }
    const j = json as Partial<ProxyStoreErrorJSON> & { stack?: unknown };
    let cls = typeof j.code === 'string' ? ERROR_CLASSES.get(j.code) : undefined;
    if (!cls && typeof j.name === 'string') cls = ERROR_BY_NAME.get(j.name);
    if (!cls && typeof j.stack === 'string') {
      // structuredClone (and worker/IPC messages) keep an Error's message and
      // stack but not its class or own fields: the stack's first line still
      // starts with the class name.
      const name = /^(\w+):/.exec(j.stack)?.[1];
      if (name) cls = ERROR_BY_NAME.get(name);
    }
    const ctx: ErrorContext = {};
    if (typeof j.key === 'string') ctx.key = j.key;
    if (typeof j.lifetime === 'string') ctx.lifetime = j.lifetime;
    if (typeof j.consumedBy === 'object' && j.consumedBy !== null) (ctx as { consumedBy?: ConsumedBy }).consumedBy = j.consumedBy;
    if (Array.isArray(j.writtenKeys) && j.writtenKeys.every((k) => typeof k === 'string')) ctx.writtenKeys = j.writtenKeys;
    if (typeof j.mayHaveRun === 'boolean') (ctx as { mayHaveRun?: boolean }).mayHaveRun = j.mayHaveRun;
    const err = new (cls ?? ProxyStoreError)(typeof j.message === 'string' ? j.message : '(no message)', ctx);
    if (typeof j.stack === 'string') err.stack = j.stack;
    return err;
  }
}

/** A proxy's key is not in the store (evicted, expired, or consumed by another resolver). */
export class ProxyResolveMissingKeyError extends ProxyStoreError {
  static override readonly code: string = 'PROXY_RESOLVE_MISSING_KEY';
  /**
   * Set when the object was an ephemeral one that somebody consumed (read
   * from its tombstone); undefined when it was evicted, expired or never
   * stored. Lets a handler tell a duplicate delivery from a lost input.
   */
  readonly consumedBy: ConsumedBy | undefined;

  constructor(message: string, context: ErrorContext & { consumedBy?: ConsumedBy } = {}) {
    super(message, context);
    this.consumedBy = context.consumedBy;
  }

  override toJSON(): ProxyStoreErrorJSON {
    const out = super.toJSON();
    if (this.consumedBy !== undefined) out.consumedBy = this.consumedBy;
    return out;
  }
}

/** `null`, `undefined` and booleans cannot be proxied (ProxyStore: None and bool). */
export class NonProxiableTypeError extends ProxyStoreError {
  static override readonly code: string = 'NON_PROXIABLE_TYPE';
}

/** A proxy was not created by a store, or its store cannot be found to resolve it. */
export class ProxyStoreFactoryError extends ProxyStoreError {
  static override readonly code: string = 'PROXY_STORE_FACTORY';
}

/** A store with the same name is already registered. */
export class StoreExistsError extends ProxyStoreError {
  static override readonly code: string = 'STORE_EXISTS';
}

/**
 * The store was closed (`store.close()`): it takes no more operations, and
 * proxies it made (or refs of its name, in this process) cannot resolve
 * through it. Make a new store of that name to go on.
 */
export class StoreClosedError extends ProxyStoreError {
  static override readonly code: string = 'STORE_CLOSED';
}

/** Bytes could not be serialized or deserialized. */
export class SerializationError extends ProxyStoreError {
  static override readonly code: string = 'SERIALIZATION';
}

/** An unresolved proxy was touched; `await resolve(proxy)` first. */
export class ProxyNotResolvedError extends ProxyStoreError {
  static override readonly code: string = 'PROXY_NOT_RESOLVED';
}

/** The lifetime has ended (closed or lease expired). */
export class LifetimeEndedError extends ProxyStoreError {
  static override readonly code: string = 'LIFETIME_ENDED';
}

/**
 * `setResult` of a future that already has its result (set by this or any
 * other process, or ended with its lifetime). Nothing was changed.
 */
export class FutureAlreadySetError extends ProxyStoreError {
  static override readonly code: string = 'FUTURE_ALREADY_SET';
}

/** A future's result did not come within the wait's `timeout`. Nothing was consumed; wait again to go on waiting. */
export class FutureTimeoutError extends ProxyStoreError {
  static override readonly code: string = 'FUTURE_TIMEOUT';
}

/** Borrow rules: shared borrow while mutably borrowed, mutable borrow while borrowed, update while borrowed. */
export class MutableBorrowError extends ProxyStoreError {
  static override readonly code: string = 'MUTABLE_BORROW';
}

/** The operation needs an `OwnedProxy` (or a `RefMutProxy` for `update`). */
export class ReferenceNotOwnedError extends ProxyStoreError {
  static override readonly code: string = 'REFERENCE_NOT_OWNED';
}

/** The handle was moved away, released or dropped. */
export class ReferenceInvalidError extends ProxyStoreError {
  static override readonly code: string = 'REFERENCE_INVALID';
}

/** The object already has an owner. */
export class AlreadyOwnedError extends ProxyStoreError {
  static override readonly code: string = 'ALREADY_OWNED';
}

/** An owner cannot be dropped while it is borrowed. */
export class BorrowedError extends ProxyStoreError {
  static override readonly code: string = 'BORROWED';
}

/** Options that contradict each other or are malformed. */
export class InvalidOptionsError extends ProxyStoreError {
  static override readonly code: string = 'INVALID_OPTIONS';
}

/** A ref (from `toRef`, JSON or msgpack) is malformed or cannot be used here. */
export class InvalidRefError extends InvalidOptionsError {
  static override readonly code: string = 'INVALID_REF';
}

/** A Redis call failed (connection lost, timeout, server limit) or replied something unexpected. */
export class RedisOperationError extends ProxyStoreError {
  static override readonly code: string = 'REDIS_OPERATION';
  /**
   * Set when a failed write may have left objects behind that it could not
   * remove (Redis unreachable for the clean-up too): the store keys to
   * `evict` once Redis is back. A failed `put`/`putBatch` otherwise removes
   * what it may have written, so this is usually undefined.
   */
  readonly writtenKeys: readonly string[] | undefined;

  constructor(message: string, context: ErrorContext = {}) {
    super(message, context);
    this.writtenKeys = context.writtenKeys && context.writtenKeys.length > 0 ? [...context.writtenKeys] : undefined;
  }

  override toJSON(): ProxyStoreErrorJSON {
    const out = super.toJSON();
    if (this.writtenKeys !== undefined) out.writtenKeys = [...this.writtenKeys];
    return out;
  }
}

/**
 * A call met a Redis Cluster in the middle of a change (a slot migrating, a
 * failover: MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a master gone) and was sent
 * again, with the same arguments, until its command timeout, without getting
 * through. Retryable: the same call a little later is safe (every operation
 * of the library is). {@link ClusterReconfiguringError.mayHaveRun} says
 * whether one of the attempts may have run (its reply was lost) or none did.
 *
 * @example
 * ```ts
 * try {
 *   await store.put(value);
 * } catch (err) {
 *   if (err instanceof ClusterReconfiguringError) setTimeout(retry, 1000); // nothing to undo
 * }
 * ```
 */
export class ClusterReconfiguringError extends RedisOperationError {
  static override readonly code: string = 'CLUSTER_RECONFIGURING';
  /** Always true: the cluster settles, and the same call then goes through. */
  readonly retryable = true;
  /**
   * Whether the command may have run on Redis: false when every attempt was
   * refused before running (redirected, or a script stopped before its first
   * write); true when an attempt's connection closed or timed out after it
   * was sent.
   */
  readonly mayHaveRun: boolean;

  constructor(message: string, context: ErrorContext & { mayHaveRun?: boolean } = {}) {
    super(message, context);
    this.mayHaveRun = context.mayHaveRun ?? true;
  }

  override toJSON(): ProxyStoreErrorJSON {
    return { ...super.toJSON(), mayHaveRun: this.mayHaveRun };
  }
}

/**
 * Redis lost its data since this connector first saw it: the server was
 * restarted empty (no persistence, or persistence that failed), flushed, or
 * failed over to a replica that had none of it. Raised instead of "missing:
 * evicted, expired or never stored" (resolve) or "its lease ended"
 * (ownership handles) when the server's generation marker changed: the object
 * was most likely stored before the loss and went with it. Not retryable:
 * the data is gone; put it again.
 *
 * The connector writes a small generation marker per Redis (per master on a
 * Cluster) when it connects, and reads it again only when something is
 * missing, so this costs nothing on the normal path. See docs/durability.md.
 *
 * @example
 * ```ts
 * try {
 *   await resolve(proxy);
 * } catch (err) {
 *   if (err instanceof RedisDataLostError) alert('Redis restarted empty: recompute the inputs');
 * }
 * ```
 */
export class RedisDataLostError extends ProxyStoreError {
  static override readonly code: string = 'REDIS_DATA_LOST';
}

/**
 * A write ran on its master, but fewer replicas than the connector's
 * `durability.replicas` acknowledged it within `durability.timeout` (Redis
 * `WAIT`): if the master fails now, the promoted replica may not have it.
 * The message says what the call reached ("ran on the master, acknowledged
 * by 0 of 1 replicas"). Retryable: every call of the library is safe to send
 * again (the same consume, release or update is recognised by its token and
 * not applied twice), and a put's fresh keys were removed. Until a retry
 * succeeds, treat the call as not done: its effect may be undone by a
 * failover (see docs/durability.md).
 *
 * @example
 * ```ts
 * try {
 *   await release(borrowed);
 * } catch (err) {
 *   if (err instanceof DurabilityError) await release(borrowed); // same call again
 * }
 * ```
 */
export class DurabilityError extends RedisOperationError {
  static override readonly code: string = 'DURABILITY';
  /** Always true: the same call again is safe, and succeeds once the replicas catch up. */
  readonly retryable = true;
  /**
   * Whether the write ran on its master: true when too few replicas
   * acknowledged it (only its replication is in doubt); false when the master
   * refused it before running (`NOREPLICAS`: fewer replicas in sync than its
   * `min-replicas-to-write`; nothing was written).
   */
  readonly mayHaveRun: boolean;

  constructor(message: string, context: ErrorContext & { mayHaveRun?: boolean } = {}) {
    super(message, context);
    this.mayHaveRun = context.mayHaveRun ?? true;
  }

  override toJSON(): ProxyStoreErrorJSON {
    return { ...super.toJSON(), mayHaveRun: this.mayHaveRun };
  }
}

type ErrorClass = new (message: string, context?: ErrorContext) => ProxyStoreError;

const ERROR_CLASSES = new Map<string, ErrorClass>(
  (
    [
      ProxyStoreError,
      ProxyResolveMissingKeyError,
      NonProxiableTypeError,
      ProxyStoreFactoryError,
      StoreExistsError,
      StoreClosedError,
      SerializationError,
      ProxyNotResolvedError,
      LifetimeEndedError,
      FutureAlreadySetError,
      FutureTimeoutError,
      MutableBorrowError,
      ReferenceNotOwnedError,
      ReferenceInvalidError,
      AlreadyOwnedError,
      BorrowedError,
      InvalidOptionsError,
      InvalidRefError,
      RedisOperationError,
      ClusterReconfiguringError,
      RedisDataLostError,
      DurabilityError,
    ] as const
  ).map((cls) => [cls.code, cls]),
);

const ERROR_BY_NAME = new Map<string, ErrorClass>([...ERROR_CLASSES.values()].map((cls) => [cls.name, cls]));

/** Prefix of the error replies our Lua scripts produce: `PSR_<CODE> <message>`. */
const LUA_ERROR = /^PSR_([A-Z_]+) ([\s\S]*)$/;

/**
 * Turn an error from a Redis call into a library error. Coded script errors
 * become their class; anything else becomes a {@link RedisOperationError}
 * naming the operation.
 */
export function errorFromReply(err: unknown, operation: string, context: ErrorContext = {}): ProxyStoreError {
  if (err instanceof ProxyStoreError) return err;
  const full = err instanceof Error ? err.message : String(err);
  // A script's answer stays its class behind ioredis's "Too many Cluster
  // redirections. Last error: ReplyError: PSR_..." (the redirections came first).
  const message = innerMessage(full);
  const coded = LUA_ERROR.exec(message);
  if (coded) {
    const cls = ERROR_CLASSES.get(coded[1] as string);
    if (cls) return new cls(coded[2] as string, { ...context, cause: err });
  }
  const fault = clusterFault(err);
  if (fault) return reconfiguring(operation, fault, { ...context, cause: err });
  const subject = subjectOf(context);
  let why = full;
  if (err instanceof Error && err.name === 'ConnectionDownError') {
    // From the connection guard (src/redis/connection.ts): it names the cause already.
    why = message;
  } else if (/^Command timed out: /.test(message)) {
    why = message.slice('Command timed out: '.length);
  } else if (/Command timed out/i.test(message)) {
    why = 'no reply within the command timeout (Redis down, restarting or busy?); the command may or may not have run';
  } else if (/^NOREPLICAS\b/.test(message)) {
    // The server-side half of durability (min-replicas-to-write): refused before running.
    // Scripts write nothing before their first write command, which is where Redis refuses.
    return new DurabilityError(
      `Redis ${operation} failed${subject}: the master refused the write: fewer replicas in sync with it than its ` +
        `min-replicas-to-write (a replica down, lagging, or not yet attached after a failover); nothing was written. ` +
        `It is safe to send the same call again once the replicas are back. (${message})`,
      { ...context, cause: err, mayHaveRun: false },
    );
  } else if (/^OOM /.test(message)) {
    why = `Redis is out of memory (maxmemory reached under a noeviction policy), nothing was written: ${message}`;
  } else if (/Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|max retries per request/i.test(message)) {
    why = `Redis is unreachable: ${message}`;
  }
  return new RedisOperationError(`Redis ${operation} failed${subject}: ${why}`, { ...context, cause: err });
}

/**
 * The same error (same class and fields) with `extra` added to its message;
 * `more` adds written keys, or says that the command may have run.
 * @internal
 */
export function withMessage(error: ProxyStoreError, extra: string, more: { writtenKeys?: readonly string[]; mayHaveRun?: boolean } = {}): ProxyStoreError {
  const Cls = error.constructor as new (message: string, context: ErrorContext & { mayHaveRun?: boolean; consumedBy?: ConsumedBy }) => ProxyStoreError;
  const context: ErrorContext & { mayHaveRun?: boolean; consumedBy?: ConsumedBy } = { cause: error.cause };
  if (error.key !== undefined) context.key = error.key;
  if (error.lifetime !== undefined) context.lifetime = error.lifetime;
  const written = more.writtenKeys ?? (error instanceof RedisOperationError ? error.writtenKeys : undefined);
  if (written) context.writtenKeys = written;
  if (error instanceof ClusterReconfiguringError) context.mayHaveRun = more.mayHaveRun ?? error.mayHaveRun;
  if (error instanceof ProxyResolveMissingKeyError && error.consumedBy) context.consumedBy = error.consumedBy;
  const copy = new Cls(`${error.message}${extra}`, context);
  copy.stack = `${copy.name}: ${copy.message}\n${(error.stack ?? '').split('\n').slice(1).join('\n')}`;
  return copy;
}

function subjectOf(context: ErrorContext): string {
  return context.key ? ` (key ${context.key})` : context.lifetime ? ` (lifetime ${context.lifetime})` : '';
}

const FAULT_WORDS: Record<FaultKind, string> = {
  moved: 'its slot moved to another master',
  ask: 'its slot is migrating to another master',
  tryagain: 'its slot is migrating (its keys are split between two masters)',
  nonlocal: 'its slot is migrating (a key it touches has left the node)',
  clusterdown: 'the cluster is down (a slot has no master: a failover in progress?)',
  notmaster: 'the node is no master (demoted, or still loading)',
  group: "the client's slot map changed while it was sending",
  closed: 'the connection to its master closed (a master that died?)',
  timeout: 'no reply within the command timeout',
};

/**
 * The {@link ClusterReconfiguringError} for a cluster fault; `retried`
 * (seconds) when the library sent the command again until its deadline.
 * @internal
 */
export function reconfiguring(
  operation: string,
  fault: ClusterFault,
  context: ErrorContext & { mayHaveRun?: boolean },
  retried?: number,
): ClusterReconfiguringError {
  const mayHaveRun = context.mayHaveRun ?? fault.mayHaveRun;
  const tried = retried === undefined ? '' : ` (sent again for ${retried.toFixed(1)} s, until its command timeout)`;
  // The cluster's own words (MOVED, TRYAGAIN, ...) stay in `cause`; the message says what they mean.
  const where = fault.slot !== undefined ? ` (slot ${fault.slot}, ${fault.kind === 'ask' ? 'migrating to' : 'now served by'} ${fault.node ?? '?'})` : '';
  return new ClusterReconfiguringError(
    `Redis ${operation} failed${subjectOf(context)}: the Redis Cluster is reconfiguring: ${FAULT_WORDS[fault.kind]}${where}${tried}. ` +
      (mayHaveRun
        ? 'The command may have run (a reply was lost); it is safe to retry.'
        : 'The command did not run; retry it once the cluster has settled.'),
    { ...context, mayHaveRun },
  );
}
