/**
 * Messages between a chaos scenario (the test process) and its worker children
 * (test/chaos/children/worker.ts), and what a worker reports at the end.
 */
import type { ErrorSeen, OpRecord, WorkloadName } from './ops.js';

/** What one worker runs, handed over in the CHAOS_WORKER environment variable (JSON). */
export interface WorkerConfig {
  index: number;
  workloads: WorkloadName[];
  leaseTtl: number;
  opDeadlineMs: number;
  retryMs: number;
  producers: number;
  objects: number;
  borrowers: number;
  batch: number;
  paceMs: number;
}

export type ToWorker =
  | { type: 'go' }
  /** An acknowledged ephemeral put of another worker: race to consume it. */
  | { type: 'consume'; id: string; ref: unknown; slot: number }
  /** Start nothing new; reply `quiesced` once every loop has ended. */
  | { type: 'stop' }
  /** Finish the refs received, end everything held (drops, evictions, closes), reply `report`. */
  | { type: 'drain' }
  | { type: 'exit' };

export type FromWorker =
  /** `hotSlots`: slots of the worker's long-lived objects and lifetimes (what a reshard should move). */
  | { type: 'ready'; pid: number; hotSlots: number[] }
  | { type: 'put'; id: string; ref: unknown; key: string; slot: number; ackAt: number }
  | { type: 'beat'; progress: Record<WorkloadName, { ok: number; lastOkAt: number }> }
  | { type: 'quiesced' }
  | { type: 'report'; report: WorkerReport }
  | { type: 'fatal'; message: string };

/** One consumer's attempts at one ephemeral ref. */
export interface ConsumeResult {
  id: string;
  pid: number;
  /** Got the value. */
  got: boolean;
  /** Got a value, but not the one put under this id. */
  wrongValue: boolean;
  /** Ended with ProxyResolveMissingKeyError; the pid its tombstone names, if any. */
  missing: boolean;
  consumedByPid?: number;
  /** Attempts, and how many failed with an unclear error (may or may not have consumed). */
  attempts: number;
  unclear: number;
  /** Stopped retrying (its retry budget ran out) without a definitive answer. */
  gaveUp: boolean;
}

export interface EphemeralReport {
  putsAcked: number;
  putsFailed: number;
  results: ConsumeResult[];
}

export interface OwnershipReport {
  objects: number;
  grantedShared: number;
  grantedMut: number;
  refusedBusy: number;
  /** Pairs of held borrows of one object, at least one mutable, whose client-side intervals overlap. */
  overlaps: number;
  objectsWithOverlap: number;
  sharedOverlaps: number;
  /** Example overlaps (ms offsets), for the report. */
  overlapSamples: string[];
  releasesAcked: number;
  /** Release refused as unknown after the holder kept the borrow about a lease TTL: its lease may have ended. */
  releasesLapsed: number;
  /**
   * Release refused as unknown although the borrow's lease cannot have ended yet: Redis lost
   * the acknowledged grant (a stale master granted it). Its interval counts for overlaps.
   */
  grantsUndone: number;
  /** Release never got a definitive answer within the retry budget. */
  releasesFailed: number;
  /** Acknowledged releases whose lease later reappeared in Redis (the release was undone). */
  lostReleases: number;
  updatesAcked: number;
  updatesUnclear: number;
  /** Acknowledged updates missing from the object's final value. */
  lostUpdates: number;
  /** Updates that failed with an unclear error yet are in the final value. */
  unclearApplied: number;
  /** Owners whose object vanished while owned (lease ended, evicted behind the owner's back). */
  ownersLost: number;
  /** drop refused with BorrowedError although every borrow was released: a lingering borrow. */
  dropsBlocked: number;
  dropsFailed: number;
}

export interface BatchesReport {
  putBatches: number;
  putBatchesFailed: number;
  proxyBatches: number;
  proxyBatchesFailed: number;
  getBatches: number;
  getBatchesFailed: number;
  /** Keys of acknowledged batch puts that a later getBatch found missing or different. */
  batchKeysLost: number;
  contextLifetimes: number;
  /** close() calls that failed (then retried at the end). */
  closesFailed: number;
  /** Lifetimes that could not be closed even at the end: their members may leak. */
  lifetimesLeftOpen: number;
  /** Members of a closed lifetime still present after its close was acknowledged. */
  membersAfterClose: number;
  extendsAcked: number;
  extendsFailed: number;
  /** Lease ends not equal to the acknowledged extends (allowing the unclear ones either way). */
  leaseEndsOff: number;
  /** Members whose expiry differs from their lease lifetime's end. */
  membersOutOfStep: number;
  evictsFailed: number;
  /** Plain keys the worker could not evict even at the end. */
  keysLeftBehind: number;
}

export interface WorkerReport {
  pid: number;
  ops: OpRecord[];
  errors: ErrorSeen[];
  /** Expected refusals (lost consume races, busy borrows) by `workload.op class`. */
  refusals: Record<string, number>;
  /** Calls still pending when the report was made (after waiting for them). */
  pendingAtEnd: { w: WorkloadName; op: string; ageMs: number }[];
  lateSettled: number;
  ephemeral?: EphemeralReport;
  ownership?: OwnershipReport;
  batches?: BatchesReport;
}
