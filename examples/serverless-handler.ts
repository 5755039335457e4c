/**
 * A serverless-style function: `handler(event)` runs in a fresh process per
 * invocation, and its event is JSON that carries refs instead of data. The
 * input is ephemeral, so it is consumed exactly once even when the platform
 * delivers the same event twice (at-least-once delivery): the second
 * invocation finds it consumed, learns by whom, and answers
 * `{ duplicate: true }` instead of failing. The handler returns the ref of a
 * new object, kept under a lease so that nothing leaks if nobody reads it.
 *
 * Run on its own, this file plays the platform: it puts an input, makes an
 * event, and delivers it twice, each time to a new process:
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/serverless-handler.ts
 *
 * One invocation (what the platform runs; prints the response as JSON):
 *
 *   PROXYSTORE_REDIS_URL=... PROXYSTORE_REDIS_NAMESPACE=... npx tsx examples/serverless-handler.ts invoke '<event JSON>'
 *
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import { execFile } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import {
  ENV_NAMESPACE,
  ENV_URL,
  LeaseLifetime,
  ProxyResolveMissingKeyError,
  RedisConnector,
  Store,
  proxyReviver,
  resolve,
  type Proxy,
} from '../src/index.js';

/** The store name the platform and the function share: refs name their store. */
export const STORE = 'serverless-example';
/** Seconds the function's result lives if nobody reads it. */
const RESULT_LEASE = 300;

export interface OrderLine {
  sku: string;
  qty: number;
  price: number;
}
export interface Summary {
  lines: number;
  revenue: number;
  bySku: Record<string, number>;
}
/** The event, once parsed with `proxyReviver`: its refs are proxies again. */
export interface OrderEvent {
  requestId: string;
  orders: Proxy<OrderLine[]>;
}
/** What the function returns (as JSON, its proxy becomes a ref). */
export type HandlerResponse = { summary: Proxy<Summary> } | { duplicate: true; reason: string };

// ------------------------------------------------------------------ function

let store: Store | undefined;

/** The function's store, built on first use ("cold start") from the environment. */
function functionStore(): Store {
  const url = process.env[ENV_URL];
  const namespace = process.env[ENV_NAMESPACE];
  if (!url || !namespace) throw new Error(`set ${ENV_URL} and ${ENV_NAMESPACE}`);
  store ??= new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
  return store;
}

function summarize(orders: OrderLine[]): Summary {
  const bySku: Record<string, number> = {};
  let revenue = 0;
  for (const { sku, qty, price } of orders) {
    bySku[sku] = (bySku[sku] ?? 0) + qty;
    revenue += qty * price;
  }
  return { lines: orders.length, revenue, bySku };
}

/** The function itself. */
export async function handler(event: OrderEvent): Promise<HandlerResponse> {
  const store = functionStore();
  let orders: OrderLine[];
  try {
    orders = await resolve(event.orders); // consumes the input: one resolve, in one process, ever
  } catch (err) {
    // A redelivered event: another invocation consumed the input (consumedBy says who, when, where).
    // An input that is simply gone (evicted, expired) has no consumer: that is a real failure.
    if (err instanceof ProxyResolveMissingKeyError && err.consumedBy) return { duplicate: true, reason: err.message };
    throw err;
  }
  const lease = new LeaseLifetime(store, { expiry: RESULT_LEASE, name: `summary-${event.requestId}` });
  return { summary: await store.proxy(summarize(orders), { lifetime: lease }) };
}

/**
 * One invocation, as a platform's runtime would do it: parse the event
 * (refs become proxies), run the handler, serialize the response (proxies
 * become refs), and close the store so that the process can end.
 */
export async function invoke(eventText: string): Promise<string> {
  try {
    return JSON.stringify(await handler(JSON.parse(eventText, proxyReviver) as OrderEvent));
  } finally {
    await store?.close();
    store = undefined;
  }
}

// ------------------------------------------------------------------ platform (demo)

const execFileAsync = promisify(execFile);

/** Run one invocation in a new process, as a serverless platform would; returns its response text. */
async function invokeInFreshProcess(eventText: string): Promise<string> {
  const self = fileURLToPath(import.meta.url);
  const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const { stdout } = await execFileAsync(process.execPath, [...loader, self, 'invoke', eventText]);
  return stdout;
}

async function main(): Promise<void> {
  const url = process.env[ENV_URL] ?? 'redis://127.0.0.1:6379';
  const namespace = process.env[ENV_NAMESPACE] ?? 'example';
  // The invocations build their stores from these.
  process.env[ENV_URL] = url;
  process.env[ENV_NAMESPACE] = namespace;
  const platform = new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
  try {
    const skus = ['apple', 'pear', 'plum'];
    const lines = Array.from({ length: 30_000 }, (_, i) => ({ sku: skus[i % 3] as string, qty: 1 + (i % 5), price: 0.5 }));
    const orders = await platform.proxy(lines, { evict: true });
    const event = JSON.stringify({ requestId: 'req-1', orders }); // the proxy is written as its ref
    console.log(`event: ${event.length} bytes for ${lines.length} order lines`);

    const first = JSON.parse(await invokeInFreshProcess(event), proxyReviver) as HandlerResponse;
    if (!('summary' in first)) throw new Error(`first delivery: unexpected ${JSON.stringify(first)}`);
    const summary = await resolve(first.summary);
    console.log(`first delivery: ${summary.lines} lines, revenue ${summary.revenue}, by sku ${JSON.stringify(summary.bySku)}`);

    const second = JSON.parse(await invokeInFreshProcess(event), proxyReviver) as HandlerResponse;
    console.log(`second delivery of the same event: ${JSON.stringify(second)}`);
  } finally {
    await platform.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  const [command, eventText] = process.argv.slice(2);
  (command === 'invoke' ? invoke(eventText ?? '').then((out) => console.log(out)) : main()).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
