/**
 * Watch the wire with MONITOR: which commands one client sent while a piece of
 * code ran (to prove an operation is one round trip, and that scripts go as
 * EVALSHA).
 *
 *   const wire = await watch(redis, store.connector.client as Redis);
 *   const seen = await wire.during(() => store.put(1));
 *   wire.stop();
 */
import { once } from 'node:events';
import { createConnection } from 'node:net';
import type { Redis } from 'ioredis';

export interface Seen {
  command: string;
  args: string[];
}

/**
 * MONITOR on a plain socket, calling `onLine(args, from)` per command seen.
 * Not ioredis' monitor(): it enters monitoring mode only in a `.then()` after
 * MONITOR's +OK, so a line that arrives in the same packet (another test file
 * busy on the shared Redis at that moment) is taken for the reply to a
 * command that does not exist, and ioredis throws "Command queue state
 * error" from its socket handler. Lines are parsed as ioredis parses them.
 */
export async function openMonitor(redis: Redis, onLine: (args: string[], from: string) => void): Promise<() => void> {
  const socket = createConnection({ host: redis.options.host ?? '127.0.0.1', port: redis.options.port ?? 6379 });
  await once(socket, 'connect');
  socket.setEncoding('utf8');
  let buffer = '';
  let started!: () => void;
  const ok = new Promise<void>((res) => (started = res));
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (line === '+OK') started();
      else if (line.startsWith('+')) {
        // +<time> [<db> <from>] "<command>" "<arg>" ...
        const argIndex = line.indexOf('"');
        const from = line.slice(line.indexOf(' ') + 2, argIndex - 2).split(' ')[1] ?? '';
        onLine(line.slice(argIndex + 1, -1).split('" "').map((a) => a.replace(/\\"/g, '"')), from);
      }
    }
  });
  socket.write('MONITOR\r\n');
  await ok;
  return () => socket.destroy();
}

export async function watch(redis: Redis, source: Redis) {
  await source.ping(); // make sure the store's connection is up
  const address = `${source.stream.localAddress}:${source.stream.localPort}`;
  const seen: Seen[] = [];
  const stop = await openMonitor(redis, (args, from) => {
    if (from.endsWith(address)) seen.push({ command: (args[0] ?? '').toLowerCase(), args: args.slice(1) });
  });
  let marker = 0;
  /** The commands the store's connection sent while `fn` ran. */
  async function during(fn: () => Promise<unknown>): Promise<Seen[]> {
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
  return { during, stop };
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for MONITOR output');
    await new Promise((r) => setTimeout(r, 5));
  }
}
