/**
 * The one place that sends Lua to Redis.
 *
 * Every script in `lua/` is registered on the client with ioredis
 * `defineCommand` (EVAL the first time on a connection, EVALSHA after, and
 * EVAL again after NOSCRIPT, so `SCRIPT FLUSH` and restarts break nothing).
 * Command names carry the script's SHA, so two versions of this library can
 * share one client. Each script has a typed signature generated from its
 * header (KEYS and ARGV names) and a reply decoder here that checks the
 * reply's shape at run time, so a wrong reply is a clear error, not a wrong
 * value.
 *
 * @module
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { LUA_SCRIPTS } from '../generated/lua.js';
import { InvalidOptionsError, RedisOperationError, errorFromReply, type ErrorContext } from '../errors.js';

export type ScriptName = keyof typeof LUA_SCRIPTS;
type KeyName<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['keys'][number];
type ArgName<N extends ScriptName> = (typeof LUA_SCRIPTS)[N]['args'][number];
/** Values a script argument may take. */
export type ScriptArg = string | number | Buffer;
/** The named KEYS of a script. */
export type ScriptKeys<N extends ScriptName> = Record<KeyName<N>, string>;
/** The named ARGV of a script. */
export type ScriptArgs<N extends ScriptName> = Record<ArgName<N>, ScriptArg>;

/** What `consume` replies. */
export type ConsumeReply =
  | { consumed: true; value: Buffer }
  | { consumed: false; tombstone: Buffer | undefined; nowMs: number };

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

/** Reply decoders, one per script; the compiler checks that every script has one. */
const REPLIES = {
  // Ownership (src/ownership/): codes are documented in each script's header.
  ownedCreate: oneOf('ownedCreate', [1] as const),
  intoOwned: oneOf('intoOwned', [1] as const),
  borrow: oneOf('borrow', [1] as const),
  mutBorrow: oneOf('mutBorrow', [1] as const),
  release: oneOf('release', [1, 2] as const),
  drop: oneOf('drop', [1] as const),
  abandon: oneOf('abandon', [0, 1, 2] as const),
  clone: oneOf('clone', [1] as const),
  update: oneOf('update', [1] as const),
  renew: oneOf('renew', [0, 1, 2] as const),
  consume(reply: unknown): ConsumeReply {
    if (!Array.isArray(reply)) fail('consume', reply);
    const flag = asInteger('consume', reply, reply[0]);
    if (flag === 1 && Buffer.isBuffer(reply[1])) return { consumed: true, value: reply[1] };
    if (flag === 0 && (reply[1] === null || Buffer.isBuffer(reply[1]))) {
      return { consumed: false, tombstone: reply[1] ?? undefined, nowMs: asInteger('consume', reply, reply[2]) };
    }
    fail('consume', reply);
  },
} satisfies { [N in ScriptName]: (reply: unknown) => unknown };

export type ScriptReply<N extends ScriptName> = ReturnType<(typeof REPLIES)[N]>;

/**
 * Check a call against the script's header before anything is sent: ioredis
 * would send `undefined` as an empty string and an object as
 * "[object Object]", so a missing key would name a Redis key outside the
 * namespace instead of failing.
 */
function checkCall(name: ScriptName, keys: object, args: object, context: ErrorContext = {}): void {
  const script = LUA_SCRIPTS[name];
  const k = keys as Record<string, unknown>;
  const a = args as Record<string, unknown>;
  for (const key of script.keys) {
    if (typeof k[key] !== 'string' || k[key] === '') {
      throw new InvalidOptionsError(`script ${name}: KEYS ${key} must be a non-empty string, got ${describeArg(k[key])}`, context);
    }
  }
  for (const arg of script.args) {
    const v = a[arg];
    if (!(typeof v === 'string' || Buffer.isBuffer(v) || (typeof v === 'number' && Number.isFinite(v)))) {
      throw new InvalidOptionsError(`script ${name}: ARGV ${arg} must be a string, a finite number or a Buffer, got ${describeArg(v)}`, context);
    }
  }
}

function describeArg(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 100));
  if (typeof v === 'number') return String(v);
  if (v === null || v === undefined) return String(v);
  return typeof v;
}

type Client = Redis | Cluster;
type CommandFn = (...args: ScriptArg[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  return `psr_${name}_${LUA_SCRIPTS[name].sha.slice(0, 12)}`;
}

/** Typed access to the Lua scripts on one client. */
export class Scripts {
  constructor(private readonly client: Client) {
    for (const name of Object.keys(LUA_SCRIPTS) as ScriptName[]) {
      const command = commandName(name);
      if (typeof (client as unknown as Record<string, unknown>)[command] === 'function') continue;
      const script = LUA_SCRIPTS[name];
      client.defineCommand(command, { numberOfKeys: script.keys.length, lua: script.source });
    }
  }

  private args<N extends ScriptName>(
    name: N,
    keys: Record<KeyName<N>, string>,
    args: Record<ArgName<N>, ScriptArg>,
  ): ScriptArg[] {
    const script = LUA_SCRIPTS[name];
    const out: ScriptArg[] = [];
    for (const k of script.keys as readonly KeyName<N>[]) out.push(keys[k]);
    for (const a of script.args as readonly ArgName<N>[]) out.push(args[a]);
    return out;
  }

  /**
   * Run a script. Replies come back as Buffers (binary-safe); coded script
   * errors become their error class.
   */
  async run<N extends ScriptName>(
    name: N,
    keys: Record<KeyName<N>, string>,
    args: Record<ArgName<N>, ScriptArg>,
    context: ErrorContext = {},
  ): Promise<ScriptReply<N>> {
    checkCall(name, keys, args, context);
    const fn = (this.client as unknown as Record<string, CommandFn>)[`${commandName(name)}Buffer`] as CommandFn;
    let reply: unknown;
    try {
      reply = await fn.apply(this.client, this.args(name, keys, args));
    } catch (err) {
      throw errorFromReply(err, name, context);
    }
    return REPLIES[name](reply) as ScriptReply<N>;
  }

  /** Queue a script on a pipeline; decode its reply with {@link Scripts.decode}. */
  queue<N extends ScriptName>(
    pipeline: ChainableCommander,
    name: N,
    keys: Record<KeyName<N>, string>,
    args: Record<ArgName<N>, ScriptArg>,
  ): void {
    checkCall(name, keys, args);
    const fn = (pipeline as unknown as Record<string, CommandFn>)[`${commandName(name)}Buffer`] as CommandFn;
    void fn.apply(pipeline, this.args(name, keys, args));
  }

  /** Decode a reply obtained from a pipeline. */
  decode<N extends ScriptName>(name: N, reply: unknown): ScriptReply<N> {
    return REPLIES[name](reply) as ScriptReply<N>;
  }
}
