/**
 * Ephemeral workload (one worker's part): producers put `proxy(value, { evict: true })` and
 * hand each acknowledged ref to the test process, which sends it to several workers racing to
 * consume it. A consumer retries an unclear failure on the same proxy (as an application would)
 * until a definitive answer or its retry budget runs out.
 */
import { ProxyResolveMissingKeyError, fromRef, getKey, resolve, toRef, type Store } from '../../../src/index.js';
import { slotOfKey } from '../harness/inspect.js';
import { isUnclear, type OpLog } from '../harness/ops.js';
import type { ConsumeResult, EphemeralReport, FromWorker, WorkerConfig } from '../harness/protocol.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PAD = 'x'.repeat(200);

export class EphemeralWorkload {
  private seq = 0;
  private putsAcked = 0;
  private putsFailed = 0;
  private readonly results: ConsumeResult[] = [];
  private readonly consuming = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly log: OpLog,
    private readonly config: WorkerConfig,
    private readonly send: (msg: FromWorker) => void,
  ) {}

  loops(running: () => boolean): Promise<void>[] {
    return Array.from({ length: this.config.producers }, () => this.produce(running));
  }

  private async produce(running: () => boolean): Promise<void> {
    while (running()) {
      const id = `${process.pid}.${++this.seq}`;
      const r = await this.log.run(
        'ephemeral',
        'put',
        () => this.store.proxy({ id, pad: PAD }, { evict: true }),
        (p) => (p === undefined ? undefined : slotOfKey(this.store, getKey(p))),
        // A put acknowledged after its deadline: nobody will consume it; take it back.
        { onLate: (p) => void this.store.evict(getKey(p)).catch(() => undefined) },
      );
      if (r.ok) {
        this.putsAcked++;
        const key = getKey(r.value);
        this.send({ type: 'put', id, ref: toRef(r.value), key, slot: slotOfKey(this.store, key), ackAt: Date.now() });
      } else {
        this.putsFailed++;
        await sleep(50);
      }
      await sleep(this.config.paceMs);
    }
  }

  /** Race for one ref; the result is kept for the report. */
  consume(id: string, ref: unknown, slot: number): void {
    const task = this.consumeOne(id, ref, slot).finally(() => this.consuming.delete(task));
    this.consuming.add(task);
  }

  private async consumeOne(id: string, ref: unknown, slot: number): Promise<void> {
    const proxy = fromRef<{ id: string }>(ref);
    const result: ConsumeResult = { id, pid: process.pid, got: false, wrongValue: false, missing: false, attempts: 0, unclear: 0, gaveUp: false };
    const started = Date.now();
    for (let backoff = 100; ; backoff = Math.min(2 * backoff, 2_000)) {
      result.attempts++;
      const r = await this.log.run('ephemeral', 'consume', () => resolve(proxy), slot, {
        // Losing the race to another consumer (the tombstone names it) is the rule working.
        refusal: (e) => e instanceof ProxyResolveMissingKeyError && e.consumedBy !== undefined,
      });
      if (r.ok) {
        result.got = true;
        result.wrongValue = r.value?.id !== id;
        break;
      }
      if (r.error instanceof ProxyResolveMissingKeyError) {
        result.missing = true;
        if (r.error.consumedBy?.pid !== undefined) result.consumedByPid = r.error.consumedBy.pid;
        break;
      }
      if (isUnclear(r.error)) result.unclear++;
      if (Date.now() - started > this.config.retryMs) {
        result.gaveUp = true;
        break;
      }
      await sleep(backoff);
    }
    this.results.push(result);
  }

  /** Wait for every consume received so far. */
  async drain(): Promise<void> {
    while (this.consuming.size > 0) await Promise.allSettled([...this.consuming]);
  }

  report(): EphemeralReport {
    return { putsAcked: this.putsAcked, putsFailed: this.putsFailed, results: this.results };
  }
}
