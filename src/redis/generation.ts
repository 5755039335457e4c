/**
 * Telling "Redis lost its data" from "this object ended".
 *
 * A Redis restarted without its data (no persistence), flushed, or failed
 * over to a replica that had none of it answers every later call as if the
 * objects had been evicted, consumed or had their leases end. To say what
 * happened instead, the connector keeps a **generation marker** on each
 * Redis (each master of a Cluster): a small key `<namespace>:generation:{t}`
 * holding a random id, written with `SET NX` when a connection becomes ready
 * (so the first connector to meet an empty Redis writes it, and every other
 * one reads the same id), with a 30-day TTL that every check and a daily
 * timer push back. The connector remembers the id it saw; when a call finds
 * something missing (a resolve of a missing key, a renewal or handle call
 * finding its lease gone), it reads the marker again: gone or different means
 * the server lost its data since, and the call fails with a
 * {@link RedisDataLostError}.
 *
 * On a Cluster there is one marker per master, in that master's lowest slot
 * (its tag `t` is a string of that slot), checked on the master that serves
 * the missing key's slot. Nothing is sent on the normal path: only at connect
 * and after a miss.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import createDebug from 'debug';
import { RedisDataLostError, type ErrorContext } from '../errors.js';
import { randomId } from '../keys.js';
import { serverChecked } from './limits.js';

const log = createDebug('proxystore:redis');

/** How long a marker lives without being touched (refreshed on every check and daily). */
export const MARKER_TTL_MS = 30 * 24 * 3600 * 1000;
/** How often a connected connector pushes its markers' TTL back. */
const REFRESH_MS = 24 * 3600 * 1000;

/** When and where a loss was seen. */
export interface DataLoss {
  /** The marker key that vanished or changed. */
  marker: string;
  /** Unix ms at which this connector noticed. */
  detectedAtMs: number;
}

/** A string whose Cluster slot is `slot` (found by counting; cached). */
const slotTags = new Map<number, string>();
export function tagForSlot(slot: number): string {
  let tag = slotTags.get(slot);
  if (tag !== undefined) return tag;
  for (let i = 0; ; i++) {
    const candidate = `g${i}`;
    const s = calculateSlot(candidate);
    if (!slotTags.has(s)) slotTags.set(s, candidate);
    if (s === slot) {
      tag = candidate;
      break;
    }
  }
  return tag;
}

interface ClusterSlots {
  slots: string[][];
}

/** The generation markers of one client (one per namespace). */
export class GenerationWatch {
  /** Marker key -> the generation id this connector saw. */
  private readonly seen = new Map<string, string>();
  /** Marker key -> the loss seen on it (kept: later misses are explained by it too). */
  private readonly lost = new Map<string, DataLoss>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onReady = () => void this.baseline();

  constructor(
    private readonly client: Redis | Cluster,
    private readonly namespace: string,
    private readonly cluster: boolean,
  ) {
    client.on('ready', this.onReady);
    if (client.status === 'ready') this.onReady();
  }

  /** The marker key in `slot`. */
  marker(slot: number): string {
    return `${this.namespace}:generation:{${tagForSlot(slot)}}`;
  }

  /** The marker of the master serving `redisKey` (on a single Redis, the one marker). */
  private markerFor(redisKey: string): string {
    if (!this.cluster) return this.marker(0);
    const slots = (this.client as unknown as ClusterSlots).slots;
    const node = slots[calculateSlot(redisKey)]?.[0];
    if (node === undefined) return this.marker(calculateSlot(redisKey));
    // The master's lowest slot, as the slot map says now.
    for (let s = 0; s < slots.length; s++) if (slots[s]?.[0] === node) return this.marker(s);
    return this.marker(calculateSlot(redisKey));
  }

  /** Every master's marker (on a Cluster: by the slot map as it is now). */
  private markers(): string[] {
    if (!this.cluster) return [this.marker(0)];
    const slots = (this.client as unknown as ClusterSlots).slots;
    const lowest = new Map<string, number>();
    for (let s = 0; s < slots.length; s++) {
      const node = slots[s]?.[0];
      if (node !== undefined && !lowest.has(node)) lowest.set(node, s);
    }
    return [...lowest.values()].map((s) => this.marker(s));
  }

  /** Write or read every master's marker; a failure only means no baseline yet. */
  private async baseline(): Promise<void> {
    if (this.stopped) return;
    await Promise.all(this.markers().map((m) => this.touch(m).catch((err: unknown) => log('generation marker %s: %O', m, err))));
    if (!this.timer) {
      this.timer = setInterval(() => void this.baseline(), REFRESH_MS);
      this.timer.unref();
    }
  }

  /** SET NX GET the marker (and push its TTL back): the loss seen on it, if any. */
  private async touch(marker: string): Promise<DataLoss | undefined> {
    // Nothing is written on a server the version check refuses (it rejects then).
    const checked = serverChecked(this.client);
    if (checked) await checked;
    const fresh = randomId();
    const previous = (await this.client.call('SET', marker, fresh, 'NX', 'GET', 'PX', String(MARKER_TTL_MS))) as string | null;
    if (previous !== null) await this.client.pexpire(marker, MARKER_TTL_MS);
    const now = previous ?? fresh;
    const known = this.seen.get(marker);
    this.seen.set(marker, now);
    if (known !== undefined && known !== now && !this.lost.has(marker)) {
      log('Redis lost its data: generation marker %s changed', marker);
      this.lost.set(marker, { marker, detectedAtMs: Date.now() });
    }
    return this.lost.get(marker);
  }

  /**
   * After a miss on `redisKey`: whether its server lost its data since this
   * connector first saw it (undefined too when the check itself fails).
   */
  async check(redisKey: string): Promise<DataLoss | undefined> {
    if (this.stopped) return undefined;
    try {
      return await this.touch(this.markerFor(redisKey));
    } catch (err) {
      log('generation check failed: %O', err);
      return undefined;
    }
  }

  /** {@link check} for many keys: one check per master they are on. */
  async checkMany(redisKeys: readonly string[]): Promise<(DataLoss | undefined)[]> {
    if (this.stopped) return redisKeys.map(() => undefined);
    const markers = redisKeys.map((k) => this.markerFor(k));
    const seen = new Map<string, Promise<DataLoss | undefined>>();
    for (const m of markers) {
      if (!seen.has(m)) {
        seen.set(
          m,
          this.touch(m).catch((err: unknown) => {
            log('generation check failed: %O', err);
            return undefined;
          }),
        );
      }
    }
    return Promise.all(markers.map((m) => seen.get(m) as Promise<DataLoss | undefined>));
  }

  /** Stop the refresh timer and listener. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.client.off('ready', this.onReady);
  }
}

/** The error for a miss explained by a loss. */
export function dataLostError(loss: DataLoss, what: string, context: ErrorContext): RedisDataLostError {
  const at = new Date(loss.detectedAtMs).toISOString();
  return new RedisDataLostError(
    `${what}: Redis lost its data (restarted empty, flushed, or failed over to a replica without it; noticed at ${at}, ` +
      `its generation marker ${loss.marker} had changed), and this object was most likely stored before: it is gone with it. ` +
      'Store it again (see docs/durability.md)',
    context,
  );
}
