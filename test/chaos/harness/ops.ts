/**
 * Recording what a chaos workload did: every call with its client-side start and end, its
 * slot and its outcome, within a deadline (a call still pending at the deadline is "hung": the
 * workload moves on, the call is tracked until it settles, if ever). Errors are grouped by class
 * and message shape, and flagged when a Redis or ioredis internal reached the caller (MOVED,
 * TRYAGAIN, "Too many Cluster redirections", ...). No vitest dependency: children use it.
 */
import { ProxyStoreError } from '../../../src/index.js';

export type WorkloadName = 'ephemeral' | 'ownership' | 'batches';

/** One call, as the workload saw it. */
export interface OpRecord {
  w: WorkloadName;
  op: string;
  /** Epoch ms before the call and after it settled (or at its deadline, when it hung). */
  t0: number;
  t1: number;
  ok: boolean;
  /** The Cluster slot(s) of the keys involved, when known. */
  slot?: number | number[];
  /** Signature of the error (see {@link ErrorSeen}). */
  e?: string;
  /** Still pending at its deadline. */
  hung?: boolean;
  /** Failed with an expected refusal of the rules (a lost consume race, a busy borrow): not an error. */
  refused?: boolean;
}

/** One kind of error seen, with how often and where. */
export interface ErrorSeen {
  /** Constructor name (`RedisOperationError`, `ReplyError`, ...). */
  cls: string;
  /** A ProxyStoreError subclass, i.e. one of the library's typed errors. */
  typed: boolean;
  code?: string;
  /** The first Redis/ioredis internal found in the message (MOVED, TRYAGAIN, ...), if any. */
  raw?: string;
  /** The message with keys, ids, addresses and numbers replaced: the grouping key. */
  shape: string;
  /** One full message, as seen first. */
  sample: string;
  count: number;
  /** `workload.op` names where it was seen. */
  where: string[];
}

/** Redis or ioredis internals that should not reach a user of the library as they are. */
export const RAW_MARKERS: [string, RegExp][] = [
  ['Too many Cluster redirections', /Too many Cluster redirections/i],
  ['MOVED', /\bMOVED\b/],
  ['ASK', /\bASK \d/],
  ['TRYAGAIN', /\bTRYAGAIN\b/],
  ['CLUSTERDOWN', /\bCLUSTERDOWN\b/],
  ['non local key', /non local key/i],
  ['slots allocation group', /same slots allocation group/i],
  ['CROSSSLOT', /\bCROSSSLOT\b/],
  ['READONLY', /\bREADONLY\b/],
  ['MASTERDOWN', /\bMASTERDOWN\b/],
  ['LOADING', /\bLOADING\b/],
  ['Connection is closed', /Connection is closed/i],
  ['Command timed out', /Command timed out/i],
  ['ECONNREFUSED', /ECONNREFUSED/],
  ['ECONNRESET', /ECONNRESET/],
  ['Failed to refresh slots cache', /Failed to refresh slots cache/i],
  ['None of startup nodes is available', /None of startup nodes/i],
];

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? ` (cause: ${err.cause.message})` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** The message with what varies between occurrences replaced, so that equal causes group. */
export function messageShape(message: string): string {
  return message
    .split('\n')[0]!
    .replace(/\b[0-9a-f]{40}\b/g, '<node>')
    .replace(/\d{1,3}(\.\d{1,3}){3}:\d+/g, '<addr>')
    .replace(/[\w-]+:\{[^}]*\}:[\w:~%-]+/g, '<rkey>')
    .replace(/[A-Za-z0-9_-]{22}(~[A-Za-z0-9_-]{22})?/g, '<id>')
    .replace(/\bc-[0-9a-f]{8}\b/g, '<ns>')
    .replace(/\d+(\.\d+)?/g, '<n>')
    .slice(0, 180);
}

export function describeError(err: unknown): Omit<ErrorSeen, 'count' | 'where'> {
  const message = errorMessage(err);
  const cls = err instanceof Error ? err.constructor.name : typeof err;
  // Raw text in what the caller reads: a library error's own message. Its `cause` keeps the
  // server's or ioredis's own words by design (errors.ts), so it is shown, not counted.
  const own = err instanceof ProxyStoreError ? err.message : message;
  const raw = RAW_MARKERS.find(([, re]) => re.test(own))?.[0];
  const code = err instanceof ProxyStoreError ? err.code : undefined;
  return {
    cls,
    typed: err instanceof ProxyStoreError,
    ...(code !== undefined ? { code } : {}),
    ...(raw !== undefined ? { raw } : {}),
    shape: messageShape(message),
    sample: message.slice(0, 400),
  };
}

/** The error a hung call is recorded with (the call itself may still settle later). */
export class HungCallError extends Error {
  constructor(op: string, ms: number) {
    super(`${op} did not settle within ${ms} ms`);
    this.name = 'HungCallError';
  }
}

export type Outcome<T> =
  | { ok: true; value: T; ms: number }
  | { ok: false; error: unknown; hung: boolean; ms: number };

/** Options of {@link OpLog.run}. */
export interface RunOptions<T> {
  /** Gets the value of a call that settles after its deadline (e.g. to release a late borrow). */
  onLate?: (value: T) => void;
  /** Errors that are the rules working as meant (counted as refusals, not as errors). */
  refusal?: (err: unknown) => boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Records calls of one process. */
export class OpLog {
  readonly records: OpRecord[] = [];
  readonly errors = new Map<string, ErrorSeen>();
  /** Expected refusals by `workload.op class`. */
  readonly refusals = new Map<string, number>();
  /** Calls in flight: those past their deadline are hung. */
  private readonly inFlight = new Map<number, { w: WorkloadName; op: string; t0: number }>();
  private nextId = 0;
  /** Calls that settled after their deadline. */
  lateSettled = 0;
  /** Per workload: successes, and the end of the latest one. */
  readonly progress: Record<WorkloadName, { ok: number; lastOkAt: number }> = {
    ephemeral: { ok: 0, lastOkAt: 0 },
    ownership: { ok: 0, lastOkAt: 0 },
    batches: { ok: 0, lastOkAt: 0 },
  };

  constructor(readonly deadlineMs: number) {}

  /** Note an error without a call record (e.g. a step inside a call). Returns its signature. */
  noteError(w: WorkloadName, op: string, err: unknown): string {
    const d = describeError(err);
    const signature = `${d.cls}|${d.code ?? ''}|${d.shape}`;
    const seen = this.errors.get(signature);
    const where = `${w}.${op}`;
    if (seen) {
      seen.count++;
      if (!seen.where.includes(where)) seen.where.push(where);
    } else {
      this.errors.set(signature, { ...d, count: 1, where: [where] });
    }
    return signature;
  }

  /**
   * Run `fn` and record it. Resolves with its outcome, or at the deadline with a hung outcome
   * (the call is followed until it settles, see {@link RunOptions.onLate}). `slot` may be
   * computed from the value (a new key's slot is known only after a put).
   */
  async run<T>(
    w: WorkloadName,
    op: string,
    fn: () => Promise<T>,
    slot?: number | number[] | ((value: T | undefined) => number | number[] | undefined),
    options: RunOptions<T> = {},
  ): Promise<Outcome<T>> {
    const { onLate, refusal } = options;
    const id = this.nextId++;
    const t0 = Date.now();
    this.inFlight.set(id, { w, op, t0 });
    const slotOf = (value: T | undefined) => (typeof slot === 'function' ? slot(value) : slot);
    let hung = false;
    const call = (async () => fn())().then(
      (value) => {
        this.inFlight.delete(id);
        if (hung) {
          this.lateSettled++;
          onLate?.(value);
        }
        return { ok: true as const, value };
      },
      (error: unknown) => {
        this.inFlight.delete(id);
        if (hung) this.lateSettled++;
        return { ok: false as const, error };
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((r) => {
      timer = setTimeout(() => r('deadline'), this.deadlineMs);
    });
    const first = await Promise.race([call, deadline]);
    clearTimeout(timer);
    const t1 = Date.now();
    if (first === 'deadline') {
      hung = true;
      const error = new HungCallError(`${w}.${op}`, this.deadlineMs);
      const s = slotOf(undefined);
      this.records.push({ w, op, t0, t1, ok: false, hung: true, e: this.noteError(w, op, error), ...(s !== undefined ? { slot: s } : {}) });
      return { ok: false, error, hung: true, ms: t1 - t0 };
    }
    if (first.ok) {
      const s = slotOf(first.value);
      this.records.push({ w, op, t0, t1, ok: true, ...(s !== undefined ? { slot: s } : {}) });
      this.progress[w].ok++;
      this.progress[w].lastOkAt = t1;
      return { ok: true, value: first.value, ms: t1 - t0 };
    }
    const s = slotOf(undefined);
    if (refusal?.(first.error)) {
      const name = `${w}.${op} ${first.error instanceof Error ? first.error.constructor.name : typeof first.error}`;
      this.refusals.set(name, (this.refusals.get(name) ?? 0) + 1);
      this.records.push({ w, op, t0, t1, ok: false, refused: true, ...(s !== undefined ? { slot: s } : {}) });
    } else {
      this.records.push({ w, op, t0, t1, ok: false, e: this.noteError(w, op, first.error), ...(s !== undefined ? { slot: s } : {}) });
    }
    return { ok: false, error: first.error, hung: false, ms: t1 - t0 };
  }

  /** Calls still pending now. */
  pending(): { w: WorkloadName; op: string; ageMs: number }[] {
    const now = Date.now();
    return [...this.inFlight.values()].map((c) => ({ w: c.w, op: c.op, ageMs: now - c.t0 }));
  }

  /** Wait (at most `ms`) until no call is pending; returns those still pending. */
  async settle(ms: number): Promise<{ w: WorkloadName; op: string; ageMs: number }[]> {
    const until = Date.now() + ms;
    while (this.inFlight.size > 0 && Date.now() < until) await sleep(100);
    return this.pending();
  }
}

/** Codes of typed errors that are definitive refusals: the call did not take effect. */
const DEFINITIVE = new Set([
  'PROXY_RESOLVE_MISSING_KEY',
  'MUTABLE_BORROW',
  'REFERENCE_INVALID',
  'REFERENCE_NOT_OWNED',
  'ALREADY_OWNED',
  'BORROWED',
  'LIFETIME_ENDED',
  'INVALID_OPTIONS',
  'INVALID_REF',
  'NON_PROXIABLE_TYPE',
  'SERIALIZATION',
  'PROXY_STORE_FACTORY',
  'PROXY_NOT_RESOLVED',
  'STORE_EXISTS',
  'STORE_CLOSED',
]);

/**
 * An error after which the call may or may not have taken effect in Redis (no reply, lost
 * connection, a redirection storm, anything untyped): an application would retry it. The
 * library's rule errors (a missing key, a busy borrow, an ended lifetime, ...) are definitive.
 * Typed classes added later for retryable cluster errors count as unclear, as they should.
 */
export function isUnclear(err: unknown): boolean {
  return !(err instanceof ProxyStoreError) || !DEFINITIVE.has(err.code);
}
