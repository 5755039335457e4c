/**
 * A chaos worker process: runs the workloads named in CHAOS_WORKER (JSON, see
 * test/chaos/harness/protocol.ts) against the Cluster in PROXYSTORE_TEST_TARGET, through the
 * library's public API, and reports what it saw. Driven by test/chaos/harness/fleet.ts:
 * ready -> go -> (puts, beats) -> stop -> quiesced -> drain -> report -> exit.
 */
import { RedisConnector, Store } from '../../../src/index.js';
import { CHILD_ENV } from '../../harness/child.js';
import { connectionOptions, rawClient, targetFromEnv } from '../../harness/target.js';
import { connectorOptionsUnderTest } from '../harness/expectations.js';
import { OpLog } from '../harness/ops.js';
import type { FromWorker, ToWorker, WorkerConfig, WorkerReport } from '../harness/protocol.js';
import { BatchesWorkload } from '../workloads/batches.js';
import { EphemeralWorkload } from '../workloads/ephemeral.js';
import { OwnershipWorkload } from '../workloads/ownership.js';

const config = JSON.parse(process.env.CHAOS_WORKER as string) as WorkerConfig;
const target = targetFromEnv();
const namespace = process.env[CHILD_ENV.namespace] as string;

function send(msg: FromWorker): void {
  process.send?.(msg);
}

const store = new Store('chaos', new RedisConnector({ ...connectionOptions(target), namespace, ...connectorOptionsUnderTest() }), {
  register: true,
  leaseTtl: config.leaseTtl,
});
// Audit reads (lease tokens, lease ends, expiry times) go through their own client, so they never
// queue behind, or get counted with, the workload's calls.
const audit = rawClient(target);
audit.on('error', () => {});
const log = new OpLog(config.opDeadlineMs);

const ephemeral = config.workloads.includes('ephemeral') ? new EphemeralWorkload(store, log, config, send) : undefined;
const ownership = config.workloads.includes('ownership') ? new OwnershipWorkload(store, log, audit, config) : undefined;
const batches = config.workloads.includes('batches') ? new BatchesWorkload(store, log, audit, config) : undefined;

let running = false;
let loops: Promise<void>[] = [];
const beat = setInterval(() => send({ type: 'beat', progress: log.progress }), 500);

async function report(): Promise<WorkerReport> {
  await ephemeral?.drain();
  await ownership?.finish();
  await batches?.finish();
  const pendingAtEnd = await log.settle(config.opDeadlineMs);
  return {
    pid: process.pid,
    ops: log.records,
    errors: [...log.errors.values()],
    refusals: Object.fromEntries(log.refusals),
    pendingAtEnd,
    lateSettled: log.lateSettled,
    ...(ephemeral ? { ephemeral: ephemeral.report() } : {}),
    ...(ownership ? { ownership: ownership.report() } : {}),
    ...(batches ? { batches: batches.report() } : {}),
  };
}

function fatal(err: unknown): void {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'go': {
      running = true;
      const isRunning = () => running;
      loops = [...(ephemeral?.loops(isRunning) ?? []), ...(ownership?.loops(isRunning) ?? []), ...(batches?.loops(isRunning) ?? [])];
      break;
    }
    case 'consume':
      ephemeral?.consume(msg.id, msg.ref, msg.slot);
      break;
    case 'stop':
      running = false;
      void Promise.all(loops).then(() => send({ type: 'quiesced' }), fatal);
      break;
    case 'drain':
      void report().then((r) => send({ type: 'report', report: r }), fatal);
      break;
    case 'exit':
      clearInterval(beat);
      void Promise.allSettled([store.close(), audit.quit()]).then(() => process.disconnect());
      break;
  }
});

try {
  await ownership?.setup();
  await batches?.setup();
  send({ type: 'ready', pid: process.pid, hotSlots: [...(ownership?.hotSlots() ?? []), ...(batches?.hotSlots() ?? [])] });
} catch (err) {
  fatal(err);
}
