/**
 * `submit`: run a function elsewhere (a worker pool, a queue, a FaaS call)
 * on borrowed data, and end the borrows when it is done (ProxyStore's
 * `proxystore.store.scopes.submit`).
 *
 * @module
 */
import createDebug from 'debug';
import { ReferenceInvalidError } from '../errors.js';
import { randomId } from '../keys.js';
import { proxyState, type ProxyState } from '../proxy/proxy.js';
import { toRef } from '../proxy/refs.js';
import { objectKeys, storeOf, type HandleState } from './handle.js';
import { retire } from './lifecycle.js';
import { checkOptions } from '../options.js';

const log = createDebug('proxystore:ownership');

/** Options of {@link submit}. */
export interface SubmitOptions {
  /**
   * Arguments for `submitFn`. Proxies among them (at the top level) are
   * passed as their refs, ready for transport; borrows among them end when
   * the call settles.
   */
  args?: readonly unknown[];
  /**
   * More borrows whose scope is the call: handles that travel some other way
   * (nested inside `args`, already sent with `toRef` or `JSON.stringify`).
   * They are not converted; they are released when the call settles.
   */
  refs?: Iterable<unknown>;
}

function isBorrow(state: ProxyState | undefined): state is HandleState {
  return state !== undefined && (state.kind === 'ref' || state.kind === 'refmut') && state.token !== undefined;
}

/**
 * End one borrow by its token, wherever its handle is now: `release()` needs
 * a valid handle, but this one may have moved to the callee.
 */
async function endBorrow(state: HandleState): Promise<void> {
  const store = storeOf(state);
  try {
    await store.connector.scripts.run('release', objectKeys(store, state.key), { key: state.key, token: state.token, call: randomId(), grant: state.grant ?? 0 }, { key: state.key });
  } catch (err) {
    // The receiver released it already, or its lease ended: the borrow is over either way.
    if (!(err instanceof ReferenceInvalidError)) throw err;
    log('borrow of %s was already over at the end of submit', state.key);
  }
  retire(store, state, 'its submit() scope ended');
}

/**
 * Call `submitFn(...args)` with the proxies in `args` turned into refs, and
 * release every borrow among `args` and `refs` once the promise it returns
 * settles, fulfilled or rejected. The returned promise settles the same way,
 * after the borrows are released, so the owner can `drop` as soon as it
 * resumes. A borrow the callee already released is fine.
 *
 * @typeParam F - the submitting function (e.g. `pool.run`); `submit` returns what it resolves to.
 * @example
 * ```ts
 * const shared = await borrow(owned);
 * const sum = await submit((ref) => pool.run(ref), { args: [shared] });
 * await drop(owned); // the borrow ended with the call
 * ```
 */
export async function submit<F extends (...args: never[]) => unknown>(
  submitFn: F,
  options: SubmitOptions = {},
): Promise<Awaited<ReturnType<F>>> {
  checkOptions('submit', options, ['args', 'refs']);
  const args = options.args ?? [];
  const scoped = new Map<string, HandleState>();
  for (const value of [...args, ...(options.refs ?? [])]) {
    const state = proxyState(value);
    if (isBorrow(state) && !scoped.has(state.token)) scoped.set(state.token, state);
  }
  const endAll = async (): Promise<unknown[]> => {
    const results = await Promise.allSettled([...scoped.values()].map(endBorrow));
    return results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  };

  let result: Awaited<ReturnType<F>>;
  try {
    const transported = args.map((a) => (proxyState(a) ? toRef(a) : a));
    result = (await (submitFn as unknown as (...a: unknown[]) => unknown)(...transported)) as Awaited<ReturnType<F>>;
  } catch (err) {
    await endAll();
    throw err;
  }
  const failures = await endAll();
  if (failures.length > 0) throw failures[0];
  return result;
}
