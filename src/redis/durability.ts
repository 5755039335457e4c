/**
 * The connector's `durability` option: writes acknowledged by replicas.
 *
 * Redis replicates asynchronously: a master acknowledges a write before any
 * replica has it, so a failover (a master killed, or frozen long enough for
 * its replica to be promoted) can undo acknowledged consumes, grants and
 * releases. With `durability: { replicas: n, timeout }` every write of the
 * library is followed by `WAIT n timeoutMs` on the same connection, to the
 * master that ran it (one connection on a single Redis; on a Cluster the
 * connection to the master of the key's slot, following redirections: see
 * ./batch.ts), and counts as done only once `n` replicas have it.
 *
 * Group commit: the writes that start in the same turn of the event loop are
 * sent together, one pipeline per master followed by one WAIT, so that a
 * busy process pays one replica round trip per turn and master, not one per
 * call (WAIT blocks its connection until the replicas answer).
 *
 * A write whose WAIT saw too few replicas is sent again, with the same
 * arguments (every write of the library is safe to send twice: the same
 * consume token gets its grace copy, the same release or update `call` is
 * found done), until the command timeout has passed since its first attempt;
 * then it fails with a {@link DurabilityError} saying how far it got. A
 * failover meanwhile sends the retry to the promoted replica, where the call
 * runs afresh (the stale master's run is discarded when it rejoins).
 *
 * @module
 */
import { DurabilityError, errorFromReply, type ErrorContext, type ProxyStoreError } from '../errors.js';
import { BatchFailure, runBatchSettled, type BatchCommand, type BatchTarget } from './batch.js';
import { Backoff } from './retry.js';
import calculateSlot from 'cluster-key-slot';

/** The checked `durability` option. */
export interface Durability {
  replicas: number;
  /** WAIT's timeout, in ms (at least 1: WAIT 0 would block forever). */
  timeoutMs: number;
}

interface Call {
  command: BatchCommand;
  operation: string;
  context: ErrorContext;
  /** Unix ms after which no new attempt starts. */
  deadline: number;
  backoff: Backoff;
  attempts: number;
  /** Send it again while replicas fall short (false: fail after one WAIT). */
  retry: boolean;
  resolve(reply: unknown): void;
  reject(error: ProxyStoreError): void;
}

/** Sends writes followed by WAIT, grouped per turn of the event loop. */
export class DurableWriter {
  private pending: Call[] = [];
  private scheduled = false;

  constructor(
    private readonly target: BatchTarget,
    readonly durability: Durability,
  ) {}

  /**
   * Send one write (a single-slot command); its reply once `replicas`
   * replicas have it. `retry` false: a shortfall fails after one WAIT (a
   * renewal, which its own loop tries again soon, must not hold up the
   * others for a whole command timeout).
   */
  send(command: BatchCommand, operation: string, context: ErrorContext = {}, retry = true): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      this.enqueue({
        command,
        operation,
        context,
        deadline: Date.now() + this.target.commandDeadlineMs(),
        backoff: new Backoff(),
        attempts: 0,
        retry,
        resolve,
        reject,
      });
    });
  }

  private enqueue(call: Call): void {
    this.pending.push(call);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const calls = this.pending;
    this.pending = [];
    // One group per master, each on its own: a frozen master must not hold up the others' calls.
    const groups = new Map<string, Call[]>();
    for (const call of calls) {
      const node = this.nodeOf(call.command.key);
      let group = groups.get(node);
      if (!group) groups.set(node, (group = []));
      group.push(call);
    }
    for (const group of groups.values()) void this.sendGroup(group);
  }

  /** The master serving `key` as the slot map says now ('' on a single Redis). */
  private nodeOf(key: string): string {
    if (!this.target.isCluster) return '';
    const slots = (this.target.client as unknown as { slots: string[][] }).slots;
    return slots[calculateSlot(key)]?.[0] ?? '';
  }

  private async sendGroup(calls: Call[]): Promise<void> {
    const wait = { replicas: this.durability.replicas, timeoutMs: this.durability.timeoutMs };
    for (const call of calls) call.attempts++;
    const operation = calls.length === 1 ? (calls[0] as Call).operation : `${calls.length} writes`;
    const context = calls.length === 1 ? (calls[0] as Call).context : {};
    try {
      const result = await runBatchSettled(
        this.target,
        calls.map((c) => c.command),
        operation,
        context,
        { wait, settle: true },
      );
      calls.forEach((call, i) => this.finish(call, result.replies[i], result.errors[i], result.acked[i] ?? 0));
    } catch (err) {
      const failure = err instanceof BatchFailure ? err : undefined;
      calls.forEach((call, i) => {
        if (failure?.result && failure.done[i]) {
          this.finish(call, failure.result.replies[i], failure.result.errors[i], failure.result.acked[i] ?? 0);
          return;
        }
        // Classified for this call (its operation and key), from the raw error.
        const raw = failure ? (failure.error.cause ?? failure.error) : err;
        const error = errorFromReply(raw, call.operation, { ...call.context, cause: raw });
        call.reject(calls.length === 1 && failure ? failure.error : error);
      });
    }
  }

  private finish(call: Call, reply: unknown, error: unknown, acked: number): void {
    if (error !== undefined) {
      call.reject(errorFromReply(error, call.operation, call.context));
      return;
    }
    if (acked >= this.durability.replicas) {
      call.resolve(reply);
      return;
    }
    if (call.retry && Date.now() + this.durability.timeoutMs < call.deadline) {
      // Again, same arguments: the replicas may catch up, or a failover send it to the new master.
      void call.backoff.wait(call.deadline).then(() => this.enqueue(call));
      return;
    }
    call.reject(shortOfReplicas(call.operation, call.context, acked, this.durability, call.attempts));
  }
}

/** The DurabilityError of a write that ran on its master but reached `acked` replicas only. */
export function shortOfReplicas(operation: string, context: ErrorContext, acked: number, durability: Durability, attempts = 1): DurabilityError {
  const subject = context.key ? ` (key ${context.key})` : context.lifetime ? ` (lifetime ${context.lifetime})` : '';
  const tries = attempts > 1 ? `; sent ${attempts} times until its command timeout` : '';
  // None at all: the master has no replica in sync (after a failover, until a replica rejoins; or a stale master).
  const none = acked === 0 ? ' (no replica in sync with that master: after a failover, writes on its shard wait for a replica to rejoin)' : '';
  return new DurabilityError(
    `Redis ${operation} failed${subject}: it ran on the master, acknowledged by ${acked} of ${durability.replicas} replica(s) ` +
      `within ${durability.timeoutMs / 1000} s (durability)${none}${tries}. If that master fails now, the promoted replica may not have it. ` +
      'It is safe to send the same call again; until one succeeds, treat it as not done.',
    context,
  );
}
