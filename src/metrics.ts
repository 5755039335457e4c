/**
 * Store metrics (ProxyStore's `StoreMetrics` in spirit): per operation, how
 * many calls, how many failed, how long they took and how many bytes they
 * moved. Off by default; when on, each call costs two `performance.now()`
 * reads and a few additions.
 *
 * @module
 */

/** What one operation of a store has done since the store was made (or metrics were reset). */
export interface OperationMetrics {
  /** Calls, failed ones included. */
  count: number;
  /** Calls that threw. */
  errors: number;
  /** Total wall time in milliseconds. */
  totalMs: number;
  /** Mean wall time per call in milliseconds. */
  avgMs: number;
  /** Fastest call in milliseconds. */
  minMs: number;
  /** Slowest call in milliseconds. */
  maxMs: number;
  /** Serialized bytes written or read (0 for operations that move none). */
  bytes: number;
}

/** Metrics by operation name (`put`, `get`, `resolve`, `borrow`, ...). */
export type StoreMetrics = Record<string, OperationMetrics>;

interface Counter {
  count: number;
  errors: number;
  totalMs: number;
  minMs: number;
  maxMs: number;
  bytes: number;
}

/** Collects {@link OperationMetrics}. @internal */
export class MetricsRecorder {
  private readonly ops = new Map<string, Counter>();

  private counter(op: string): Counter {
    let c = this.ops.get(op);
    if (!c) {
      c = { count: 0, errors: 0, totalMs: 0, minMs: Infinity, maxMs: 0, bytes: 0 };
      this.ops.set(op, c);
    }
    return c;
  }

  /** Time `run` as one call of `op`. */
  async time<T>(op: string, run: () => Promise<T>): Promise<T> {
    const start = performance.now();
    let ok = false;
    try {
      const result = await run();
      ok = true;
      return result;
    } finally {
      const ms = performance.now() - start;
      const c = this.counter(op);
      c.count++;
      if (!ok) c.errors++;
      c.totalMs += ms;
      if (ms < c.minMs) c.minMs = ms;
      if (ms > c.maxMs) c.maxMs = ms;
    }
  }

  /** Count `n` events of `op` (the cache's hits, misses and invalidations: a count, no time). */
  count(op: string, n = 1): void {
    const c = this.counter(op);
    c.count += n;
    c.minMs = 0;
  }

  /** Count bytes moved by `op`. */
  bytes(op: string, n: number): void {
    this.counter(op).bytes += n;
  }

  snapshot(): StoreMetrics {
    const out: StoreMetrics = {};
    for (const [op, c] of [...this.ops].sort(([a], [b]) => a.localeCompare(b))) {
      out[op] = {
        count: c.count,
        errors: c.errors,
        totalMs: c.totalMs,
        avgMs: c.count ? c.totalMs / c.count : 0,
        minMs: c.count ? c.minMs : 0,
        maxMs: c.maxMs,
        bytes: c.bytes,
      };
    }
    return out;
  }

  reset(): void {
    this.ops.clear();
  }
}
