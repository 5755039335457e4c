/**
 * A process that holds ownership handles in named slots and runs operations
 * on them when asked, through its own registered store (same name and
 * namespace as the test's, from the environment).
 *
 * Messages in: { id, op, slot?, ref?, value?, as? } with op one of
 *   receive  slot, ref     fromRef(ref) into slot, resolve it; replies its value
 *   own      slot, value   store.ownedProxy(value) into slot
 *   borrow   slot, as      borrow(slot) into `as`     mutBorrow: the same, mutably
 *   send     slot          replies { ref: toRef(slot) } (moves the handle)
 *   set      slot, value   sets the (resolved) target's `n` to value, then update(slot)
 *   release  slot          drop  slot
 *   exit                   closes the store and exits
 * Messages out: { ready: true, pid } first; then per request
 *   { id, ok: true, value?, ref? } or { id, ok: false, name, message }.
 * LEASE_TTL (seconds) sets the store's leaseTtl.
 */
import {
  RedisConnector,
  Store,
  borrow,
  drop,
  fromRef,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
} from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
  leaseTtl: Number(process.env.LEASE_TTL ?? 30),
});

type Request = { id: number; op: string; slot?: string; ref?: unknown; value?: unknown; as?: string };
const slots = new Map<string, unknown>();

function slot(name: string | undefined): unknown {
  if (!name || !slots.has(name)) throw new Error(`no slot ${String(name)}`);
  return slots.get(name);
}

async function run(req: Request): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'receive': {
      const handle = fromRef(req.ref);
      slots.set(req.slot as string, handle);
      return { value: await resolve(handle) };
    }
    case 'own':
      slots.set(req.slot as string, await store.ownedProxy(req.value));
      return {};
    case 'borrow':
      slots.set(req.as as string, await borrow(slot(req.slot) as OwnedProxy<unknown>));
      return {};
    case 'mutBorrow':
      slots.set(req.as as string, await mutBorrow(slot(req.slot) as OwnedProxy<unknown>));
      return {};
    case 'send':
      return { ref: toRef(slot(req.slot)) };
    case 'set': {
      const handle = slot(req.slot) as RefMutProxy<{ n: unknown }>;
      await resolve(handle);
      handle.n = req.value;
      await update(handle);
      return {};
    }
    case 'release':
      await release(slot(req.slot) as RefProxy<unknown>);
      return {};
    case 'drop':
      await drop(slot(req.slot) as OwnedProxy<unknown>);
      return {};
    case 'exit':
      // The reply goes first (see below); then the store closes and the process ends.
      return {};
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

function reply(msg: object, then?: () => void): void {
  if (process.connected) process.send?.(msg, () => then?.());
}

process.on('message', (req: Request) => {
  const after = req.op === 'exit' ? () => void store.close().then(() => process.disconnect()) : undefined;
  run(req).then(
    (out) => reply({ id: req.id, ok: true, ...out }, after),
    (err: Error) => reply({ id: req.id, ok: false, name: err.name, message: err.message }, after),
  );
});
process.send?.({ ready: true, pid: process.pid });
