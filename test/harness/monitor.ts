/**
 * Watch the wire with MONITOR: which commands one client sent while a piece of
 * code ran (to prove an operation is one round trip, and that scripts go as
 * EVALSHA).
 *
 *   const wire = await watch(redis, store.connector.client as Redis);
 *   const seen = await wire.during(() => store.put(1));
 *   await wire.stop();
 */
import type { Redis } from 'ioredis';

export interface Seen {
  command: string;
  args: string[];
}

/**
 * ioredis switches a connection to monitoring mode only in a `.then()` after MONITOR's reply,
 * and drops it on disconnect; MONITOR lines of other clients (test files run in parallel) that
 * arrive in between reach it as replies to no command, which it emits as an 'error'. Those
 * lines fall outside every `during()` window: they mean nothing here.
 */
const QUEUE_STATE_ERROR = /Command queue state error/;

export async function watch(redis: Redis, source: Redis) {
  // Not redis.monitor(): it listens for one 'error' only, so a second such line is unhandled.
  const monitor = redis.duplicate({ monitor: true, lazyConnect: false });
  const failures: Error[] = [];
  monitor.on('error', (err: Error) => {
    if (!QUEUE_STATE_ERROR.test(err.message)) failures.push(err);
  });
  await new Promise<void>((resolve, reject) => {
    monitor.once('monitoring', () => resolve());
    monitor.once('end', () => reject(new Error(`MONITOR connection ended before monitoring: ${failures.join('; ')}`)));
  });
  await source.ping(); // make sure the store's connection is up
  const address = `${source.stream.localAddress}:${source.stream.localPort}`;
  const seen: Seen[] = [];
  monitor.on('monitor', (_time: string, args: string[], from: string) => {
    if (from.endsWith(address)) seen.push({ command: (args[0] ?? '').toLowerCase(), args: args.slice(1) });
  });
  let marker = 0;
  /** The commands the store's connection sent while `fn` ran. */
  async function during(fn: () => Promise<unknown>): Promise<Seen[]> {
    if (failures.length > 0) throw failures[0];
    const start = `start-${marker++}`;
    const end = `end-${marker++}`;
    await source.echo(start);
    await fn();
    await source.echo(end);
    await waitFor(() => seen.some((s) => s.command === 'echo' && s.args[0] === end));
    const from = seen.findIndex((s) => s.command === 'echo' && s.args[0] === start);
    const to = seen.findIndex((s) => s.command === 'echo' && s.args[0] === end);
    return seen.slice(from + 1, to);
  }
  function stop(): void {
    monitor.disconnect();
  }
  return { during, stop };
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for MONITOR output');
    await new Promise((r) => setTimeout(r, 5));
  }
}
