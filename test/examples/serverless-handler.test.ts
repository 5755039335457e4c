/**
 * examples/serverless-handler.ts: every invocation is a fresh process (the
 * example file run with `invoke <event>`), the event is JSON with refs, and
 * the ephemeral input is consumed once however often the event is delivered.
 */
import { ENV_NAMESPACE, ENV_URL, RedisConnector, Store, proxyReviver, resolve } from '../../src/index.js';
import { STORE, type HandlerResponse, type OrderLine } from '../../examples/serverless-handler.js';
import { runChild } from '../harness/child.js';
import { expect, test as base } from '../harness/store-fixture.js';

const HANDLER = 'examples/serverless-handler.ts';

/** One invocation in a new process: its pid and its response, refs revived as proxies. */
type Invoke = (eventText: string) => Promise<{ pid: number; response: HandlerResponse }>;

const test = base
  // The platform's store: the event's refs name it, and the function builds its own of that name.
  .extend('platform', async ({ redisUrl, namespace }, { onCleanup }) => {
    const platform = new Store(STORE, new RedisConnector({ url: redisUrl, namespace }), { register: true });
    onCleanup(() => platform.close());
    return platform;
  })
  .extend('invoke', ({ redisUrl, namespace }): Invoke => {
    return async (eventText) => {
      const out = await runChild(HANDLER, {
        args: ['invoke', eventText],
        env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
        timeoutMs: 30_000, // it must end by itself: the handler closes its store
      });
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      return { pid: out.pid, response: JSON.parse(out.stdout, proxyReviver) as HandlerResponse };
    };
  });

const ORDERS: OrderLine[] = [
  { sku: 'apple', qty: 2, price: 0.5 },
  { sku: 'pear', qty: 1, price: 2 },
  { sku: 'apple', qty: 4, price: 0.5 },
];

/** An event carrying an ephemeral input, as JSON text. */
async function makeEvent(platform: Store): Promise<{ text: string; inputKey: string }> {
  const orders = await platform.proxy(ORDERS, { evict: true });
  const text = JSON.stringify({ requestId: 'req-1', orders });
  return { text, inputKey: (JSON.parse(text) as { orders: { key: string } }).orders.key };
}

test('an invocation consumes its input and returns the ref of a new result', { timeout: 60_000 }, async ({ platform, invoke }) => {
  const event = await makeEvent(platform);
  const { response } = await invoke(event.text);
  expect('summary' in response).toBe(true);
  const summary = await resolve((response as Extract<HandlerResponse, { summary: unknown }>).summary);
  expect(summary).toEqual({ lines: 3, revenue: 5, bySku: { apple: 6, pear: 1 } });
  expect(await platform.exists(event.inputKey)).toBe(false);
});

test('the same event delivered twice: the second invocation answers duplicate, naming the first', { timeout: 60_000 }, async ({ platform, invoke }) => {
  const event = await makeEvent(platform);
  const first = await invoke(event.text);
  expect('summary' in first.response).toBe(true);
  const second = await invoke(event.text);
  expect(second.response).toEqual({ duplicate: true, reason: expect.stringContaining(`consumed by pid ${first.pid} on `) });
  expect((second.response as { reason: string }).reason).toMatch(/ at \S*examples\/serverless-handler\.ts:\d+/);
});

test('the same event delivered to two invocations at once: exactly one processes it', { timeout: 60_000 }, async ({ platform, invoke }) => {
  const event = await makeEvent(platform);
  const both = await Promise.all([invoke(event.text), invoke(event.text)]);
  const winners = both.filter(({ response }) => 'summary' in response);
  const duplicates = both.filter(({ response }) => 'duplicate' in response);
  expect(winners).toHaveLength(1);
  expect(duplicates).toHaveLength(1);
  expect((duplicates[0]!.response as { reason: string }).reason).toContain(`consumed by pid ${winners[0]!.pid} on `);
});

test('the example runs on its own, as its README section says', { timeout: 60_000 }, async ({ redisUrl, namespace }) => {
  const out = await runChild(HANDLER, {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 50_000,
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/event: \d+ bytes for 30000 order lines/);
  expect(out.stdout).toContain('first delivery: 30000 lines, revenue 45000');
  expect(out.stdout).toMatch(/second delivery of the same event: \{"duplicate":true,"reason":"key \S+ of store serverless-example was consumed by pid \d+/);
});
