/**
 * Sending a command again while a Redis Cluster reconfigures.
 *
 * ioredis follows MOVED, ASK, TRYAGAIN and CLUSTERDOWN itself, but only
 * `maxRedirections` times (16 by default, about 1.6 s with its delays), and a
 * script that meets a key that already left its node ("Script attempted to
 * access a non local key") is not followed at all. A slot migration can last
 * longer than that, and a failover takes seconds (3-5 s with a 2 s
 * `cluster-node-timeout`, 15-20 s with the default 15 s). So the library sends
 * such a call again itself, with the same arguments (the same keys, tokens and
 * values: every script and command of the library is safe to run twice), with
 * a short backoff, until the command's deadline (the client's command
 * timeout from the first attempt); then it fails with a typed, retryable
 * {@link ClusterReconfiguringError} that says whether an attempt may have run.
 *
 * Only cluster faults are retried here (see ./faults.ts); a script's answer
 * (a `PSR_` code) or another error passes at once, classified.
 *
 * @module
 */
import { errorFromReply, reconfiguring, type ErrorContext } from '../errors.js';
import { clusterFault, nodeFault, type ClusterFault } from './faults.js';

/** The first delay between two attempts, doubled up to {@link MAX_DELAY_MS}. */
const FIRST_DELAY_MS = 25;
/** The longest delay between two attempts. */
export const MAX_DELAY_MS = 400;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The delays between attempts: 25, 50, 100, 200, 400, 400, ... ms. */
export class Backoff {
  private next = FIRST_DELAY_MS;
  /** Wait the next delay, but never past `deadline` (Unix ms). */
  async wait(deadline: number): Promise<void> {
    const ms = Math.min(this.next, deadline - Date.now());
    this.next = Math.min(this.next * 2, MAX_DELAY_MS);
    if (ms > 0) await sleep(ms);
  }
}

/** What {@link retryFaults} needs to know about the call. */
export interface RetryOptions {
  operation: string;
  context: ErrorContext;
  /** Milliseconds from the first attempt after which no new attempt starts. */
  timeoutMs: number;
  /** Only a Cluster client meets cluster faults; on a single Redis nothing is retried here. */
  cluster: boolean;
  /** Called before each new attempt after a fault (e.g. to refresh the slot map). */
  onFault?: (fault: ClusterFault) => void;
}

/**
 * Run `attempt` until it succeeds, fails with something other than a cluster
 * fault, or the deadline passes; `attempt` rejects with the raw error (this
 * classifies it).
 */
export async function retryFaults<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const start = Date.now();
  const deadline = start + options.timeoutMs;
  const backoff = new Backoff();
  let mayHaveRun = false;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      // On a Cluster a node's own command timeout (a frozen or failing master) is a fault too,
      // as for a batch (./batch.ts): typed ClusterReconfiguringError, may have run.
      const fault = options.cluster ? (clusterFault(err) ?? timedOut(err)) : undefined;
      if (!fault) throw errorFromReply(err, options.operation, options.context);
      mayHaveRun ||= fault.mayHaveRun;
      // A timeout used the command timeout up: the deadline has passed.
      if (fault.kind === 'timeout' || Date.now() >= deadline) {
        throw reconfiguring(options.operation, fault, { ...options.context, cause: err, mayHaveRun }, (Date.now() - start) / 1000);
      }
      options.onFault?.(fault);
      await backoff.wait(deadline);
    }
  }
}

/** A node's command timeout as a cluster fault (kind 'timeout', may have run). */
function timedOut(err: unknown): ClusterFault | undefined {
  const fault = nodeFault(err);
  return fault?.kind === 'timeout' ? fault : undefined;
}

/**
 * How long a failed lease renewal (ownership handles, a StaticLifetime
 * part's heartbeat) waits before it is tried again: `leaseMs / 10` the first
 * time (`previousMs` undefined), then twice the previous delay, up to the
 * renewal period (`leaseMs / 3`), rather than a whole period later, when
 * the lease would have a third of its length left.
 */
export function renewalRetryDelay(leaseMs: number, previousMs: number | undefined): number {
  const period = Math.max(1, Math.floor(leaseMs / 3));
  return previousMs === undefined ? Math.max(1, Math.floor(leaseMs / 10)) : Math.min(previousMs * 2, period);
}
