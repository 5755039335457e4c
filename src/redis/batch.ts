/**
 * Batches: many single-slot commands in one round trip, on a single Redis or
 * a Redis Cluster that may be reconfiguring under them.
 *
 * On a single Redis a batch is one pipeline. On a Cluster it is one pipeline
 * per master, sent in parallel on the masters' own connections (the Cluster
 * client's node connections), not through ioredis's cluster pipeline, which
 * cannot carry a batch through a reshard or a failover:
 *
 * - it refuses a pipeline whose keys its slot map puts on several nodes ("All
 *   keys in the pipeline should belong to the same slots allocation group"),
 *   which happens whenever the map changes between grouping and sending;
 * - it follows MOVED/ASK only when every failed command of the pipeline got
 *   the same answer and every other one was a read, and then sends the whole
 *   pipeline again, reads that had succeeded included: after an ASK, a read
 *   of a key still on the migrating node goes to the importing one (with
 *   ASKING, which serves it) and comes back empty although the key exists;
 * - otherwise it hands back the raw MOVED/ASK/TRYAGAIN per command, after the
 *   others of the pipeline were written.
 *
 * Here each command is routed by the client's slot map, and each one that
 * the cluster turns away is sent again, alone or with others, until the
 * deadline (the command timeout, from the first attempt): after MOVED to the
 * node it names (the slot map is refreshed meanwhile), after ASK to the
 * importing node with ASKING, after TRYAGAIN, CLUSTERDOWN, READONLY or a
 * closed connection once the slot map is refreshed, with a short backoff.
 * Commands that succeeded are never sent again, and every command is resent
 * with the same arguments (the same key, the same bytes, the same tokens),
 * which the callers' commands are safe to run twice. What the batch could not
 * finish is reported per command ({@link BatchFailure}), so a caller that
 * wrote keys can remove them.
 *
 * @module
 */
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { errorFromReply, reconfiguring, type ErrorContext, type ProxyStoreError } from '../errors.js';
import { nodeFault, type ClusterFault } from './faults.js';
import { Backoff } from './retry.js';

/** One command of a batch: the key that routes it, and how to queue it on a pipeline. */
export interface BatchCommand {
  /** The Redis key the command touches (all its keys share this key's slot). */
  key: string;
  queue(pipeline: ChainableCommander): void;
}

/** What a batch needs of its connector. */
export interface BatchTarget {
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
  /** The deadline of a batch, from its first attempt, in ms. */
  commandDeadlineMs(): number;
  /** Resolves when the client is connected (and a Cluster knows its slots). */
  ready(): Promise<void>;
}

/**
 * A batch that did not complete: `error` is what to tell the caller;
 * `done[i]` whether command i succeeded, `unclear[i]` whether it may have run
 * although it did not succeed (a lost reply).
 */
export class BatchFailure extends Error {
  constructor(
    readonly error: ProxyStoreError,
    readonly done: readonly boolean[],
    readonly unclear: readonly boolean[],
    /** What the commands that were `done` replied (a Cluster batch past its deadline). */
    readonly result?: BatchResult,
  ) {
    super(error.message);
    this.name = 'BatchFailure';
  }

  /** Indices of the commands that may have run (succeeded, or unclear). */
  mayHaveRun(): number[] {
    return this.done.flatMap((d, i) => (d || this.unclear[i] ? [i] : []));
  }
}

/** How a batch is run: see {@link runBatch}. */
export interface BatchOptions {
  /**
   * Follow each pipeline with `WAIT replicas timeoutMs` on the same
   * connection (the connector's `durability`): each command's reply then
   * comes with how many replicas acknowledged the pipeline it succeeded in
   * ({@link BatchResult.acked}).
   */
  wait?: { replicas: number; timeoutMs: number };
  /**
   * Settle every command on its own: a command answered with an error (a
   * script's `PSR_` code) gets it in {@link BatchResult.errors} and the
   * others go on, instead of the whole batch failing (independent calls
   * sent together: group commit).
   */
  settle?: boolean;
}

/** What {@link runBatchSettled} gives per command. */
export interface BatchResult {
  replies: unknown[];
  /** The raw error a command was answered with (only with `settle`). */
  errors: (unknown | undefined)[];
  /** Replicas that acknowledged each command's pipeline (only with `wait`; 0 when its WAIT failed). */
  acked: number[];
}

/** The parts of ioredis's Cluster the routing needs (stable across ioredis 5). */
interface ClusterParts {
  slots: string[][];
  refreshSlotsCache(callback?: (err?: Error | null) => void): void;
  nodes(role?: 'all' | 'master' | 'slave'): Redis[];
  connectionPool?: {
    getInstanceByKey(key: string): Redis | undefined;
    findOrCreate(node: object, readOnly?: boolean): Redis;
  };
  natMapper?: (key: string) => object;
}

/** The connection to the node `host:port` of a cluster, made if the cluster has none yet (as ioredis does on MOVED). */
function nodeConnection(cluster: ClusterParts, key: string): Redis | undefined {
  const pool = cluster.connectionPool;
  const known = pool?.getInstanceByKey(key);
  if (known && known.status !== 'end') return known;
  if (pool && typeof cluster.natMapper === 'function') return pool.findOrCreate(cluster.natMapper(key), false);
  return cluster.nodes('all').find((n) => `${n.options.host}:${n.options.port}` === key && n.status !== 'end');
}

/** Refresh the slot map (ioredis merges concurrent refreshes); never waits past `deadline`. */
function refreshSlots(cluster: ClusterParts, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    cluster.refreshSlotsCache(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Run `commands` as a batch; their replies, in order. Throws a
 * {@link BatchFailure} when a command fails with an answer (not a cluster
 * fault), or when the deadline passes with some still turned away.
 */
export async function runBatch(target: BatchTarget, commands: readonly BatchCommand[], operation: string, context: ErrorContext = {}): Promise<unknown[]> {
  return (await runBatchSettled(target, commands, operation, context)).replies;
}

/**
 * {@link runBatch}, with the options: `wait` follows each pipeline with
 * WAIT, `settle` gives each command its own outcome. Throws a
 * {@link BatchFailure} as runBatch does (with `settle`, only when the
 * deadline passes with commands still turned away, or the connection fails).
 */
export async function runBatchSettled(
  target: BatchTarget,
  commands: readonly BatchCommand[],
  operation: string,
  context: ErrorContext = {},
  options: BatchOptions = {},
): Promise<BatchResult> {
  if (commands.length === 0) return { replies: [], errors: [], acked: [] };
  if (!target.isCluster) return runSingle(target.client, commands, operation, context, options);
  return runCluster(target, commands, operation, context, options);
}

/** The replica count a WAIT replied (0 when it failed: e.g. UNBLOCKED by a master turning replica). */
function ackedBy(result: [unknown, unknown] | undefined): number {
  if (!result || result[0]) return 0;
  const n = Number(result[1]);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

async function runSingle(
  client: Redis | Cluster,
  commands: readonly BatchCommand[],
  operation: string,
  context: ErrorContext,
  options: BatchOptions,
): Promise<BatchResult> {
  const pipeline = client.pipeline();
  for (const command of commands) command.queue(pipeline);
  if (options.wait) pipeline.wait(options.wait.replicas, options.wait.timeoutMs);
  const done = commands.map(() => false);
  const unclear = commands.map(() => false);
  let results: [Error | null, unknown][] | null;
  try {
    results = await pipeline.exec();
  } catch (err) {
    throw new BatchFailure(errorFromReply(err, operation, context), done, commands.map(() => true));
  }
  if (results === null) throw new BatchFailure(errorFromReply(new Error('pipeline was discarded'), operation, context), done, unclear);
  const acked = options.wait ? ackedBy(results.pop()) : 0;
  let first: unknown;
  const errors: (unknown | undefined)[] = commands.map(() => undefined);
  const replies = results.map(([err, value], i) => {
    if (err) {
      // No answer: the command may have run (the connection died after it was sent).
      const lost = nodeFault(err) !== undefined;
      if (options.settle && !lost) {
        errors[i] = err;
        done[i] = true;
        return undefined;
      }
      first ??= err;
      unclear[i] = lost;
    } else {
      done[i] = true;
    }
    return value;
  });
  if (first !== undefined) throw new BatchFailure(errorFromReply(first, operation, context), done, unclear);
  return { replies, errors, acked: commands.map(() => acked) };
}

async function runCluster(
  target: BatchTarget,
  commands: readonly BatchCommand[],
  operation: string,
  context: ErrorContext,
  options: BatchOptions,
): Promise<BatchResult> {
  const cluster = target.client as unknown as ClusterParts;
  const start = Date.now();
  const deadline = start + target.commandDeadlineMs();
  const backoff = new Backoff();
  const replies: unknown[] = new Array<unknown>(commands.length);
  const errors: (unknown | undefined)[] = commands.map(() => undefined);
  const acked = commands.map(() => 0);
  const done = commands.map(() => false);
  const unclear = commands.map(() => false);
  const slots = commands.map((c) => calculateSlot(c.key));
  /** Where a command goes next instead of its slot's master: a MOVED or ASK target. */
  const redirected = new Map<number, { node: string; asking: boolean }>();
  /** How many times in a row a command was redirected (MOVED/ASK) without getting through. */
  const hops = new Map<number, number>();
  let pending = commands.map((_, i) => i);
  let lastFault: ClusterFault | undefined;
  let timedOut = false;
  for (;;) {
    if ((target.client as Cluster).status !== 'ready') await target.ready().catch(() => undefined);
    const groups = new Map<string, number[]>();
    const unrouted: number[] = [];
    for (const i of pending) {
      const node = redirected.get(i)?.node ?? cluster.slots[slots[i] as number]?.[0];
      if (node === undefined) {
        unrouted.push(i);
        continue;
      }
      let group = groups.get(node);
      if (!group) groups.set(node, (group = []));
      group.push(i);
    }
    const outcomes = await Promise.all(
      [...groups].map(async ([node, group]): Promise<[number[], [unknown, unknown][], number]> => {
        const connection = nodeConnection(cluster, node);
        if (!connection) return [group, group.map(() => [new Error('Connection is closed.'), undefined]), 0];
        const pipeline = connection.pipeline();
        for (const i of group) {
          if (redirected.get(i)?.asking) pipeline.asking();
          (commands[i] as BatchCommand).queue(pipeline);
        }
        // The same connection: WAIT counts the replicas that have what this pipeline wrote.
        if (options.wait) pipeline.wait(options.wait.replicas, options.wait.timeoutMs);
        try {
          const results = (await pipeline.exec()) ?? [];
          const waited = options.wait ? ackedBy(results.pop()) : 0;
          // Drop the ASKING replies: each precedes its command.
          const own: [unknown, unknown][] = [];
          let r = 0;
          for (const i of group) {
            if (redirected.get(i)?.asking) r++;
            own.push(results[r++] ?? [new Error('pipeline was discarded'), undefined]);
          }
          return [group, own, waited];
        } catch (err) {
          return [group, group.map(() => [err, undefined]), 0];
        }
      }),
    );
    const next: number[] = [];
    let refresh = unrouted.length > 0;
    let wait = unrouted.length > 0;
    let fatal: unknown;
    for (const i of unrouted) next.push(i);
    for (const [group, results, waited] of outcomes) {
      group.forEach((i, j) => {
        const [err, value] = results[j] as [unknown, unknown];
        if (!err) {
          replies[i] = value;
          acked[i] = waited;
          done[i] = true;
          redirected.delete(i);
          return;
        }
        const fault = nodeFault(err);
        if (!fault) {
          if (options.settle) {
            errors[i] = err;
            done[i] = true;
            redirected.delete(i);
          } else {
            fatal ??= err;
          }
          return;
        }
        lastFault = fault;
        // Nodes that disagree (MOVED back and forth during a failover, an ASK
        // to a node not importing yet) get a pause after a few hops.
        const hop = (hops.get(i) ?? 0) + 1;
        hops.set(i, hop);
        if (hop > 3) wait = true;
        if (fault.kind === 'timeout') timedOut = true;
        if (fault.mayHaveRun) unclear[i] = true;
        if (fault.kind === 'ask' && fault.node) {
          redirected.set(i, { node: fault.node, asking: true });
        } else if (fault.kind === 'moved' && fault.node) {
          redirected.set(i, { node: fault.node, asking: false });
          refresh = true;
        } else {
          // TRYAGAIN, CLUSTERDOWN, a closed connection...: back to the slot's
          // master as the refreshed map says, after a pause.
          redirected.delete(i);
          refresh = true;
          wait = true;
        }
        next.push(i);
      });
    }
    if (fatal !== undefined) throw new BatchFailure(errorFromReply(fatal, operation, context), done, unclear);
    if (next.length === 0) return { replies, errors, acked };
    if (Date.now() >= deadline || timedOut) {
      const fault = lastFault ?? { kind: 'clusterdown' as const, mayHaveRun: false, message: 'no master known for the slot', redirections: false };
      const error = reconfiguring(
        `${operation} (${next.length} of ${commands.length} commands)`,
        fault,
        { ...context, mayHaveRun: next.some((i) => unclear[i]) },
        (Date.now() - start) / 1000,
      );
      throw new BatchFailure(error, done, unclear, { replies, errors, acked });
    }
    if (refresh) {
      // MOVED alone needs no pause (its target is known); the map is refreshed for later calls.
      if (wait) await refreshSlots(cluster, deadline);
      else cluster.refreshSlotsCache();
    }
    if (wait) await backoff.wait(deadline);
    pending = next;
  }
}
