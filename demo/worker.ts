/**
 * A demo worker: a separate process with its own store, built from
 * PROXYSTORE_REDIS_URL / PROXYSTORE_REDIS_NAMESPACE the first time a ref
 * needs it. It receives refs over IPC and resolves them.
 */
import { ProxyResolveMissingKeyError, fromRef, getStore, resolve, type ProxyRef } from '../src/index.js';

export interface WorkerReport {
  worker: string;
  pid: number;
  result: number | 'won' | 'lost';
  detail: string;
}

const worker = process.argv[2] ?? '?';

function reply(report: Omit<WorkerReport, 'worker' | 'pid'>): void {
  process.send?.({ worker, pid: process.pid, ...report });
}

process.on('message', async (msg: { task: string; ref?: ProxyRef }) => {
  if (msg.task === 'exit') {
    // The store this process built on demand holds a Redis connection: close it.
    await getStore('demo')?.close();
    process.disconnect();
    return;
  }
  const t = performance.now();
  const proxy = fromRef<number[]>(msg.ref);
  if (msg.task === 'sum') {
    await resolve(proxy);
    // The proxy is now the array: no copy, no unwrapping.
    let sum = 0;
    for (const x of proxy) sum += x;
    reply({ result: sum, detail: `resolved ${proxy.length.toLocaleString()} numbers in ${(performance.now() - t).toFixed(0)} ms, sum ${sum}` });
  } else if (msg.task === 'race') {
    try {
      const won = await resolve(fromRef<{ prize: string }>(msg.ref));
      reply({ result: 'won', detail: `won: got ${JSON.stringify(won)}` });
    } catch (err) {
      if (!(err instanceof ProxyResolveMissingKeyError)) throw err;
      reply({ result: 'lost', detail: `lost: ${err.message.replace(/^key \S+ of store \S+ was /, '')}` });
    }
  }
});
