/**
 * The one place that sends Lua to Redis.
 *
 * Every script in `lua/` is registered on the client with ioredis
 * `defineCommand` (EVAL the first time on a connection, EVALSHA after, and
 * EVAL again after NOSCRIPT, so `SCRIPT FLUSH` and restarts break nothing).
 * Command names carry the script's SHA, so two versions of this library can
 * share one client. Each script has a typed signature generated from its
 * header (KEYS and ARGV names; a variadic `KEYS[n...]`/`ARGV[n...]` is an
 * array) and a reply decoder here that checks the reply's shape at run time,
 * so a wrong reply is a clear error, not a wrong value.
 *
 * @module
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { LUA_SCRIPTS } from '../generated/lua.js';
import { InvalidOptionsError, RedisOperationError, errorFromReply, type ErrorContext } from '../errors.js';
import type { DurableWriter } from './durability.js';
import { retryFaults } from './retry.js';
import { parseManifest, type Manifest } from '../chunks/format.js';

export type ScriptName = keyof typeof LUA_SCRIPTS;
type KeyName<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['keys'][number];
type ArgName<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['args'][number];
type RestKey<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['restKey'];
type RestArg<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['restArg'];
/** Values a script argument may take. */
export type ScriptArg = string | number | Buffer;
/** The KEYS of a script by name; its variadic rest, if any, is an array. */
export type ScriptKeys<N extends ScriptName> = Record<KeyName<N>, string> &
  (RestKey<N> extends string ? Record<RestKey<N>, readonly string[]> : unknown);
/** The ARGV of a script by name; its variadic rest, if any, is an array. */
export type ScriptArgs<N extends ScriptName> = Record<ArgName<N>, ScriptArg> &
  (RestArg<N> extends string ? Record<RestArg<N>, readonly ScriptArg[]> : unknown);

/** What `consume` replies. */
export type ConsumeReply =
  | {
      consumed: true;
      value: Buffer;
      /** The read took the object: its grace copy holds it until released. */
      took?: true;
      /** @internal A chunked object (src/chunks/): `value` is its manifest; its grace copy holds the chunks (connector.consume reads them). */
      chunked?: Manifest;
    }
  | { consumed: false; tombstone: Buffer | undefined; nowMs: number };

/** What `lifetimeCreate` replies: `created` false when the lease was already over. */
export interface LifetimeCreateReply {
  created: boolean;
  /** The lease end (Unix ms), or undefined without a lease. */
  expiresAtMs: number | undefined;
}

/** The state `lifetimeClose` found; `missing`: Redis no longer knows the lifetime. */
export type LifetimeStateBefore = 'open' | 'closing' | 'ended' | 'missing';

/** What `lifetimeAddKeys` replies. */
export interface LifetimeAddKeysReply {
  /** How many keys were not members yet. */
  added: number;
  /** The expiry the members carry (Unix ms): the lease end the script saw (a StaticLifetime part's plus its outage margin), or -1 without a lease. */
  expiresAtMs: number;
}

/** What one `lifetimeClose` step replies. */
export interface LifetimeCloseReply {
  finished: boolean;
  /** Members this step unlinked itself. */
  evicted: number;
  before: LifetimeStateBefore;
  /** Foreign data keys the caller must unlink (foreign = 'return'), then name in `unlinked`. */
  handed: string[];
  /** The step finished and the lifetime still holds deduped objects: release its references on them. */
  deduped: boolean;
}

/** A foreign member handed to the caller with its own end (Unix ms; NO_OWN_END: none, but a rules record). */
export interface CappedMember {
  key: string;
  ownEnd: number;
}

/**
 * What `lifetimeExtend` and `lifetimeExpireChunk` reply: the expiry the
 * members now carry, which is the lease end (a StaticLifetime part's plus its
 * outage margin; with cursor 'close', the end that ended it; -1 from a chunk
 * when the lifetime is no longer an open lease); `cursor` is
 * 'done', 'close' (extend only), or where `lifetimeExpireChunk` goes on;
 * `found`, the foreign members of the chunk for the caller to expire, and
 * `capped`, those with an own end or rules record, which the caller expires
 * (with their rules records) to the earlier of the lease and their own end
 * (foreign = 'return').
 */
export interface LifetimeExpireReply {
  expiresAtMs: number;
  cursor: string;
  found: string[];
  capped: CappedMember[];
  /** lifetimeExtend only: the lifetime holds deduped objects, whose references it must move too. */
  deduped?: boolean;
}

function fail(name: string, reply: unknown): never {
  let shown: string;
  try {
    shown = JSON.stringify(reply, (_k, v: unknown) => (Buffer.isBuffer(v) ? `<${v.length} bytes>` : v)) ?? String(reply);
  } catch {
    shown = String(reply);
  }
  throw new RedisOperationError(`script ${name} gave an unexpected reply: ${shown.slice(0, 200)}`);
}

function asInteger(name: string, reply: unknown, v: unknown): number {
  const n = typeof v === 'number' ? v : Buffer.isBuffer(v) || typeof v === 'string' ? Number(v.toString()) : NaN;
  if (!Number.isInteger(n)) fail(name, reply);
  return n;
}

/** A decoder for scripts that reply one of a few integer codes. */
function oneOf<C extends number>(name: ScriptName, codes: readonly C[]): (reply: unknown) => C {
  return (reply) => {
    const n = asInteger(name, reply, reply);
    if (!(codes as readonly number[]).includes(n)) fail(name, reply);
    return n as C;
  };
}

/** A decoder for scripts that reply a positive integer. */
function positive(name: ScriptName, reply: unknown): number {
  const n = asInteger(name, reply, reply);
  if (n < 1) fail(name, reply);
  return n;
}

function asText(name: string, reply: unknown, v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return v;
  fail(name, reply);
}

function asTuple(name: string, reply: unknown, length: number): unknown[] {
  if (!Array.isArray(reply) || reply.length !== length) fail(name, reply);
  return reply as unknown[];
}

function asTextList(name: string, reply: unknown, v: unknown): string[] {
  if (!Array.isArray(v)) fail(name, reply);
  return v.map((item: unknown) => asText(name, reply, item));
}

function asExpireReply(name: 'lifetimeExtend' | 'lifetimeExpireChunk', reply: unknown, length: 4 | 5 = 4): LifetimeExpireReply {
  const [expiresAt, cursor, found, capped, deduped] = asTuple(name, reply, length);
  if (!Array.isArray(capped) || capped.length % 2 !== 0) fail(name, reply);
  const members: CappedMember[] = [];
  for (let i = 0; i < capped.length; i += 2) {
    members.push({ key: asText(name, reply, capped[i]), ownEnd: asInteger(name, reply, capped[i + 1]) });
  }
  return {
    expiresAtMs: asInteger(name, reply, expiresAt),
    cursor: asText(name, reply, cursor),
    found: asTextList(name, reply, found),
    capped: members,
    ...(length === 5 ? { deduped: asFlag(name, reply, deduped) } : {}),
  };
}

/** A 0/1 field of a reply. */
function asFlag(name: ScriptName, reply: unknown, value: unknown): boolean {
  const n = asInteger(name, reply, value);
  if (n !== 0 && n !== 1) fail(name, reply);
  return n === 1;
}

const CLOSE_STATES: ReadonlySet<string> = new Set(['open', 'closing', 'ended', 'missing']);

/** Reply decoders, one per script; the compiler checks that every script has one. */
const REPLIES = {
  // Ownership (src/ownership/): codes are documented in each script's header.
  ownedCreate: oneOf('ownedCreate', [1] as const),
  intoOwned: oneOf('intoOwned', [1] as const),
  // The grant's number (fencing: lua/includes/fence.lua).
  borrow: (reply: unknown): number => positive('borrow', reply),
  mutBorrow: (reply: unknown): number => positive('mutBorrow', reply),
  release: oneOf('release', [1, 2] as const),
  drop: oneOf('drop', [1] as const),
  abandon: oneOf('abandon', [0, 1, 2] as const),
  clone: oneOf('clone', [1] as const),
  /** The object's version after the update (lua/update.lua). */
  update(reply: unknown): number {
    const n = asInteger('update', reply, reply);
    if (n < 0) fail('update', reply);
    return n;
  },
  renew: oneOf('renew', [0, 1, 2, 3] as const),
  /** The object's version, and its bytes unless they are the `known` version's (lua/handleRead.lua). */
  handleRead(reply: unknown): { bytes: Buffer | undefined; version: number; chunked?: Manifest } {
    if (!Array.isArray(reply) || !(Buffer.isBuffer(reply[0]) || reply[0] === null)) fail('handleRead', reply);
    const version = asInteger('handleRead', reply, reply[1]);
    if (version < 0) fail('handleRead', reply);
    if (reply[2] === 1) {
      // A chunked object (src/chunks/): its manifest; the caller reads the chunks.
      const chunked = parseManifest(reply[0] as Buffer | null);
      if (!chunked) fail('handleRead', reply);
      return { bytes: undefined, version, chunked };
    }
    return { bytes: reply[0] ?? undefined, version };
  },
  consume(reply: unknown): ConsumeReply {
    if (!Array.isArray(reply)) fail('consume', reply);
    const flag = asInteger('consume', reply, reply[0]);
    if (flag === 1 && Buffer.isBuffer(reply[1])) {
      if (reply[2] === 1 && reply[3] === 1) {
        const manifest = parseManifest(reply[1]);
        if (manifest) return { consumed: true, value: reply[1], took: true, chunked: manifest };
      }
      if (reply[2] === 1 && reply.length === 3) return { consumed: true, value: reply[1], took: true };
      if (reply.length === 2) return { consumed: true, value: reply[1] };
    }
    if (flag === 0 && (reply[1] === null || Buffer.isBuffer(reply[1]))) {
      return { consumed: false, tombstone: reply[1] ?? undefined, nowMs: asInteger('consume', reply, reply[2]) };
    }
    fail('consume', reply);
  },
  objectPut: oneOf('objectPut', [1] as const),
  // Chunked objects (src/chunks/): 1 written, 2 a resend found it written.
  chunkCommit: oneOf('chunkCommit', [1, 2] as const),
  // Futures (src/future/).
  futureSet: oneOf('futureSet', [1] as const),
  futureCreate: oneOf('futureCreate', [1] as const),
  // Owned objects in lifetimes (docs/lifetimes.md, "Owned objects in lifetimes").
  lifetimeOwnedCreate: oneOf('lifetimeOwnedCreate', [1] as const),
  memberEnd: oneOf('memberEnd', [0, 1] as const),
  memberExpire: oneOf('memberExpire', [0, 1, 2] as const),
  // Deduped objects (src/dedupe/): codes are documented in each script's header.
  dedupeAdd: oneOf('dedupeAdd', [0, 1] as const),
  dedupePut: oneOf('dedupePut', [1, 2] as const),
  dedupeEvict: oneOf('dedupeEvict', [0, 1, 2] as const),
  dedupeHolder: oneOf('dedupeHolder', [0, 1, 2] as const),
  lifetimeAddDeduped(reply: unknown): LifetimeAddKeysReply {
    const [added, expiresAt] = asTuple('lifetimeAddDeduped', reply, 2);
    return { added: asInteger('lifetimeAddDeduped', reply, added), expiresAtMs: asInteger('lifetimeAddDeduped', reply, expiresAt) };
  },
  lifetimeCreate(reply: unknown): LifetimeCreateReply {
    const [created, expiresAt] = asTuple('lifetimeCreate', reply, 2);
    const flag = asInteger('lifetimeCreate', reply, created);
    const at = asInteger('lifetimeCreate', reply, expiresAt);
    if (flag !== 0 && flag !== 1) fail('lifetimeCreate', reply);
    return { created: flag === 1, expiresAtMs: at === -1 ? undefined : at };
  },
  lifetimePut(reply: unknown): number {
    return asInteger('lifetimePut', reply, reply);
  },
  lifetimeAddKeys(reply: unknown): LifetimeAddKeysReply {
    const [added, expiresAt] = asTuple('lifetimeAddKeys', reply, 2);
    return { added: asInteger('lifetimeAddKeys', reply, added), expiresAtMs: asInteger('lifetimeAddKeys', reply, expiresAt) };
  },
  lifetimeClose(reply: unknown): LifetimeCloseReply {
    const [finished, evicted, before, handed, deduped] = asTuple('lifetimeClose', reply, 5);
    const state = asText('lifetimeClose', reply, before);
    if (!CLOSE_STATES.has(state)) fail('lifetimeClose', reply);
    const done = asInteger('lifetimeClose', reply, finished);
    if (done !== 0 && done !== 1) fail('lifetimeClose', reply);
    return {
      finished: done === 1,
      evicted: asInteger('lifetimeClose', reply, evicted),
      before: state as LifetimeStateBefore,
      handed: asTextList('lifetimeClose', reply, handed),
      deduped: asFlag('lifetimeClose', reply, deduped),
    };
  },
  lifetimeExtend(reply: unknown): LifetimeExpireReply {
    return asExpireReply('lifetimeExtend', reply, 5);
  },
  lifetimeExpireChunk(reply: unknown): LifetimeExpireReply {
    return asExpireReply('lifetimeExpireChunk', reply);
  },
  // The command line's gc (src/cli/gc.ts): 1 evicted, else why it was kept.
  gcEvict: oneOf('gcEvict', [0, 1, 2, 3, 4, 5, 6, 7] as const),
} satisfies { [N in ScriptName]: (reply: unknown) => unknown };

export type ScriptReply<N extends ScriptName> = ReturnType<(typeof REPLIES)[N]>;

/**
 * Check a call against the script's header before anything is sent: ioredis
 * would send `undefined` as an empty string and an object as
 * "[object Object]", so a missing key would name a Redis key outside the
 * namespace instead of failing.
 */
function checkCall(name: ScriptName, keys: object, args: object, context: ErrorContext = {}): void {
  const script: ScriptSpec = LUA_SCRIPTS[name];
  const k = keys as Record<string, unknown>;
  const a = args as Record<string, unknown>;
  const checkKey = (label: string, v: unknown) => {
    if (typeof v !== 'string' || v === '') {
      throw new InvalidOptionsError(`script ${name}: KEYS ${label} must be a non-empty string, got ${describeArg(v)}`, context);
    }
  };
  const checkArg = (label: string, v: unknown) => {
    if (!(typeof v === 'string' || Buffer.isBuffer(v) || (typeof v === 'number' && Number.isFinite(v)))) {
      throw new InvalidOptionsError(`script ${name}: ARGV ${label} must be a string, a finite number or a Buffer, got ${describeArg(v)}`, context);
    }
  };
  for (const key of script.keys) checkKey(key, k[key]);
  for (const arg of script.args) checkArg(arg, a[arg]);
  if (script.restKey !== null) {
    const rest = k[script.restKey];
    if (!Array.isArray(rest)) checkKey(`${script.restKey}[]`, rest);
    else rest.forEach((v: unknown, i) => checkKey(`${script.restKey}[${i}]`, v));
  }
  if (script.restArg !== null) {
    const rest = a[script.restArg];
    if (!Array.isArray(rest)) checkArg(`${script.restArg}[]`, rest);
    else rest.forEach((v: unknown, i) => checkArg(`${script.restArg}[${i}]`, v));
  }
}

function describeArg(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 100));
  if (typeof v === 'number') return String(v);
  if (v === null || v === undefined) return String(v);
  return typeof v;
}

type Client = Redis | Cluster;
interface ScriptSpec {
  keys: readonly string[];
  restKey: string | null;
  args: readonly string[];
  restArg: string | null;
  source: string;
}
type CommandFn = (...args: ScriptArg[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  return `psr_${name}_${LUA_SCRIPTS[name].sha.slice(0, 12)}`;
}

/** How {@link Scripts} runs its calls. */
export interface ScriptsOptions {
  /**
   * Undefined when scripts may run now, else a promise to wait for (the
   * connector's server check: no script runs on a Redis older than 7.0).
   */
  beforeRun?: () => Promise<void> | undefined;
  /** Whether the client is a Redis Cluster client (cluster faults are then retried). */
  cluster?: boolean;
  /** How long, from the first attempt, a call is sent again while the cluster reconfigures (ms). */
  timeoutMs?: () => number;
  /** Called after every {@link Scripts.run}, whatever its outcome (the object cache drops what the script may have changed). */
  afterRun?: (name: ScriptName, key: string | undefined) => void;
  /** With the connector's `durability`: writes go through it (WAIT after each, see ./durability.ts). */
  writer?: DurableWriter;
}

/** Scripts that write nothing: never followed by WAIT. */
const READ_ONLY: ReadonlySet<ScriptName> = new Set<ScriptName>(['handleRead']);

/** Typed access to the Lua scripts on one client. */
export class Scripts {
  private readonly beforeRun: () => Promise<void> | undefined;
  private readonly cluster: boolean;
  private readonly timeoutMs: () => number;
  private readonly afterRun: ((name: ScriptName, key: string | undefined) => void) | undefined;
  private readonly writer: DurableWriter | undefined;

  constructor(
    private readonly client: Client,
    options: ScriptsOptions = {},
  ) {
    this.beforeRun = options.beforeRun ?? (() => undefined);
    this.cluster = options.cluster ?? false;
    this.timeoutMs = options.timeoutMs ?? (() => 10_000);
    this.afterRun = options.afterRun;
    this.writer = options.writer;
    for (const name of Object.keys(LUA_SCRIPTS) as ScriptName[]) {
      const command = commandName(name);
      if (typeof (client as unknown as Record<string, unknown>)[command] === 'function') continue;
      const script: ScriptSpec = LUA_SCRIPTS[name];
      // A script with variadic KEYS gets its key count with each call.
      const numberOfKeys = script.restKey === null ? script.keys.length : undefined;
      client.defineCommand(command, { numberOfKeys, lua: script.source });
    }
  }

  private args<N extends ScriptName>(name: N, keys: ScriptKeys<N>, args: ScriptArgs<N>): ScriptArg[] {
    const script: ScriptSpec = LUA_SCRIPTS[name];
    const k = keys as unknown as Record<string, string | readonly string[]>;
    const a = args as unknown as Record<string, ScriptArg | readonly ScriptArg[]>;
    const out: ScriptArg[] = [];
    for (const key of script.keys) out.push(k[key] as string);
    if (script.restKey !== null) {
      const rest = k[script.restKey] as readonly string[];
      out.unshift(script.keys.length + rest.length);
      out.push(...rest);
    }
    for (const arg of script.args) out.push(a[arg] as ScriptArg);
    if (script.restArg !== null) out.push(...(a[script.restArg] as readonly ScriptArg[]));
    return out;
  }

  /**
   * Run a script. Replies come back as Buffers (binary-safe); coded script
   * errors become their error class. On a Redis Cluster that reconfigures
   * (a slot migrating, a failover), the same call is sent again until the
   * command timeout (./retry.ts), then fails with a ClusterReconfiguringError.
   */
  async run<N extends ScriptName>(
    name: N,
    keys: ScriptKeys<N>,
    args: ScriptArgs<N>,
    context: ErrorContext = {},
  ): Promise<ScriptReply<N>> {
    checkCall(name, keys, args, context);
    const fn = (this.client as unknown as Record<string, CommandFn>)[`${commandName(name)}Buffer`] as CommandFn;
    const argv = this.args(name, keys, args);
    try {
      if (this.writer && !READ_ONLY.has(name)) {
        try {
          await this.beforeRun();
        } catch (err) {
          throw errorFromReply(err, name, context);
        }
        // The first key routes it (every key of a call shares its slot).
        const script: ScriptSpec = LUA_SCRIPTS[name];
        const first = script.restKey === null ? argv[0] : argv[1];
        // A renewal is not sent again on a shortfall: the renewal loop retries soon (src/ownership/renewal.ts).
        const reply = await this.writer.send({ key: String(first), queue: (p) => void fn.apply(p, argv) }, name, context, name !== 'renew');
        return REPLIES[name](reply) as ScriptReply<N>;
      }
      const reply = await retryFaults(
        async () => {
          const pending = this.beforeRun();
          if (pending) await pending;
          return fn.apply(this.client, argv);
        },
        { operation: name, context, timeoutMs: this.timeoutMs(), cluster: this.cluster },
      );
      return REPLIES[name](reply) as ScriptReply<N>;
    } finally {
      // Also after a failure: a script whose reply was lost may have written.
      this.afterRun?.(name, context.key);
    }
  }

  /**
   * Queue a script on a pipeline (of the client, or of one of a Cluster's
   * node connections); decode its reply with {@link Scripts.decode}.
   */
  queue<N extends ScriptName>(
    pipeline: ChainableCommander,
    name: N,
    keys: ScriptKeys<N>,
    args: ScriptArgs<N>,
  ): void {
    checkCall(name, keys, args);
    // The client's function, not the pipeline's: a node connection's pipeline
    // does not have the scripts defined on the Cluster (ioredis's scripting
    // function sends to whatever `this` is).
    const fn = (this.client as unknown as Record<string, CommandFn>)[`${commandName(name)}Buffer`] as CommandFn;
    void fn.apply(pipeline, this.args(name, keys, args));
  }

  /** Decode a reply obtained from a pipeline. */
  decode<N extends ScriptName>(name: N, reply: unknown): ScriptReply<N> {
    return REPLIES[name](reply) as ScriptReply<N>;
  }
}
