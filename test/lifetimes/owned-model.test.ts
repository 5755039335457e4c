/**
 * Model-based test of owned objects in lifetimes (docs/lifetimes.md, "Owned
 * objects in lifetimes"): fast-check drives random interleavings of
 * ownedProxy (with or without a lifetime), addProxy, borrow, mutBorrow,
 * release, update, drop, clone, a lifetime's close, a lease's expiry and the
 * death of a holder (its lease lapses: the process stopped renewing it, as a
 * SIGKILLed one does), on a real Redis, and checks every outcome (success, or
 * the exact error class) and every stored value against a small model:
 *
 * - at its lifetime's end, an owned object's owner ends: every owner
 *   operation is LifetimeEndedError from then on, and a mutable borrow
 *   cannot update; the object goes at once when nothing borrows it, else
 *   when its last borrow is released or lapses;
 * - a dead owner leaves the object to its borrows (evicted at the last);
 * - otherwise ProxyStore's rules, as test/ownership-model.test.ts checks them.
 *
 * Processes really killed (SIGKILL) while they borrow: test/lifetimes/owned-processes.test.ts.
 */
import fc from 'fast-check';
import {
  AlreadyOwnedError,
  BorrowedError,
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  LifetimeEndedError,
  MutableBorrowError,
  ReferenceInvalidError,
  ReferenceNotOwnedError,
  borrow,
  clone,
  drop,
  getKey,
  isValid,
  mutBorrow,
  release,
  update,
  type Lifetime,
  type OwnedProxy,
  type RefProxy,
  type Store,
} from '../../src/index.js';
import { objectKeys } from '../../src/ownership/handle.js';
import { renewalOf } from '../../src/ownership/renewal.js';
import { proxyState } from '../../src/proxy/proxy.js';
import { expect, test } from '../harness/ownership.js';

type Value = { v: number };
type Kind = 'owned' | 'ref' | 'refmut';
/** A handle's state: usable, invalid (moved, released, dropped, lapsed), or ended by its object's lifetime (owners only). */
type HandleState = 'valid' | 'invalid' | 'ended';

interface ModelObject {
  value: number;
  alive: boolean;
  /** The lifetime (index) bounding the owner, if any. */
  lifetime: number | undefined;
  /** Its lifetime ended it (it lives on only for its borrows). */
  ended: boolean;
  ownerAlive: boolean;
  shared: Set<number>;
  mut: number | null;
}
interface ModelHandle {
  obj: number;
  kind: Kind;
  state: HandleState;
}
interface Model {
  objects: ModelObject[];
  handles: ModelHandle[];
  /** Per lifetime: whether it has ended. Lifetime 0 and 1: ContextLifetimes; 2: a LeaseLifetime. */
  ended: boolean[];
}
interface Real {
  store: Store;
  lifetimes: Lifetime[];
  handles: object[];
  keys: string[];
}

type Outcome = 'ok' | (new (...args: never[]) => Error);
const LEASE = 2;

const seen = new Map<string, number>();

async function expectOutcome<R>(expected: Outcome, op: () => Promise<R>, what: string): Promise<R | undefined> {
  const name = expected === 'ok' ? 'ok' : expected.name;
  seen.set(name, (seen.get(name) ?? 0) + 1);
  const got = await op().then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  if (expected === 'ok') {
    if ('err' in got) throw new Error(`${what}: expected success, got ${String(got.err)}`);
    return got.value;
  }
  expect('err' in got ? got.err : 'success', `${what}: expected ${expected.name}`).toBeInstanceOf(expected);
  return undefined;
}

async function checkValues(m: Model, r: Real): Promise<void> {
  for (const [i, obj] of m.objects.entries()) {
    const stored = await r.store.get<Value>(r.keys[i] as string);
    expect(stored, `object ${i}`).toEqual(obj.alive ? { v: obj.value } : undefined);
  }
}

/** The object goes once nothing holds it: no borrow left, and its owner dead or ended by its lifetime. */
function settle(obj: ModelObject): void {
  if (obj.alive && (obj.ended || !obj.ownerAlive) && obj.shared.size === 0 && obj.mut === null) obj.alive = false;
}

/** Lifetime `j` ends: every live object it bounds loses its owner. */
function endLifetime(m: Model, j: number): void {
  m.ended[j] = true;
  for (const [i, obj] of m.objects.entries()) {
    if (!obj.alive || obj.lifetime !== j || obj.ended) continue;
    obj.ended = true;
    for (const h of m.handles) if (h.obj === i && h.kind === 'owned' && h.state === 'valid') h.state = 'ended';
    settle(obj);
  }
}

function pick(m: Model, i: number): [number, ModelHandle] {
  const index = i % m.handles.length;
  return [index, m.handles[index] as ModelHandle];
}

/** What an owner-only operation meets first, before the rules of borrowing. */
function ownerCheck(m: Model, h: ModelHandle): Outcome | undefined {
  if (h.kind !== 'owned') return ReferenceNotOwnedError;
  if (h.state === 'invalid') return ReferenceInvalidError;
  if (h.state === 'ended' || (m.objects[h.obj] as ModelObject).ended) return LifetimeEndedError;
  return undefined;
}

function addHandle(m: Model, r: Real, obj: number, kind: Kind, real: object): number {
  m.handles.push({ obj, kind, state: 'valid' });
  r.handles.push(real);
  return m.handles.length - 1;
}

function addObject(m: Model, r: Real, value: number, lifetime: number | undefined, owned: object): void {
  m.objects.push({ value, alive: true, lifetime, ended: false, ownerAlive: true, shared: new Set(), mut: null });
  r.keys.push(getKey(owned));
  addHandle(m, r, m.objects.length - 1, 'owned', owned);
}

class Create implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly value: number,
    readonly lifetime: number | undefined,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.objects.length < 5;
  }
  async run(m: Model, r: Real): Promise<void> {
    const j = this.lifetime;
    const expected: Outcome = j !== undefined && m.ended[j] ? LifetimeEndedError : 'ok';
    const options = j === undefined ? {} : { lifetime: r.lifetimes[j] as Lifetime };
    const owned = await expectOutcome(expected, () => r.store.ownedProxy<Value>({ v: this.value }, options), this.toString());
    if (owned) addObject(m, r, this.value, j, owned);
    await checkValues(m, r);
  }
  toString(): string {
    return `create(${this.value}, lifetime ${String(this.lifetime)})`;
  }
}

/** lifetime.addProxy(owned), for an owner that is usable and whose object lives. */
class Add implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly lifetime: number,
  ) {}
  private target(m: Readonly<Model>): number | undefined {
    const owners = m.handles.flatMap((h, index) =>
      h.kind === 'owned' && h.state === 'valid' && (m.objects[h.obj] as ModelObject).alive && !(m.objects[h.obj] as ModelObject).ended ? [index] : [],
    );
    return owners.length > 0 ? owners[this.i % owners.length] : undefined;
  }
  check(m: Readonly<Model>): boolean {
    return this.target(m) !== undefined;
  }
  async run(m: Model, r: Real): Promise<void> {
    const index = this.target(m) as number;
    const h = m.handles[index] as ModelHandle;
    const obj = m.objects[h.obj] as ModelObject;
    const j = this.lifetime;
    const expected: Outcome = m.ended[j] ? LifetimeEndedError : obj.lifetime !== undefined && obj.lifetime !== j ? AlreadyOwnedError : 'ok';
    await expectOutcome(expected, () => (r.lifetimes[j] as Lifetime).addProxy(r.handles[index]), this.toString());
    if (expected === 'ok') obj.lifetime = j;
    await checkValues(m, r);
  }
  toString(): string {
    return `addProxy(owner ~${this.i}, lifetime ${this.lifetime})`;
  }
}

class Lend implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly mutable: boolean,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    const first = ownerCheck(m, h);
    const expected = first ?? (obj.mut !== null || (this.mutable && obj.shared.size > 0) ? MutableBorrowError : 'ok');
    const owned = r.handles[index] as OwnedProxy<Value>;
    const got = await expectOutcome<object>(expected, () => (this.mutable ? mutBorrow(owned) : borrow(owned)), this.toString());
    if (expected === LifetimeEndedError) h.state = 'ended';
    if (got) {
      const id = addHandle(m, r, h.obj, this.mutable ? 'refmut' : 'ref', got);
      if (this.mutable) obj.mut = id;
      else obj.shared.add(id);
    }
    await checkValues(m, r);
  }
  toString(): string {
    return `${this.mutable ? 'mutBorrow' : 'borrow'}(#${this.i})`;
  }
}

class Release implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const expected: Outcome = h.kind === 'owned' ? InvalidOptionsError : h.state !== 'valid' ? ReferenceInvalidError : 'ok';
    await expectOutcome(expected, () => release(r.handles[index] as RefProxy<Value>), this.toString());
    if (expected === 'ok') {
      const obj = m.objects[h.obj] as ModelObject;
      h.state = 'invalid';
      obj.shared.delete(index);
      if (obj.mut === index) obj.mut = null;
      settle(obj);
    }
    await checkValues(m, r);
  }
  toString(): string {
    return `release(#${this.i})`;
  }
}

class Update implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly value: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    const expected: Outcome =
      h.kind === 'ref'
        ? ReferenceNotOwnedError
        : h.state === 'invalid'
          ? ReferenceInvalidError
          : h.state === 'ended' || obj.ended
            ? LifetimeEndedError
            : h.kind === 'owned' && (obj.shared.size > 0 || obj.mut !== null)
              ? MutableBorrowError
              : 'ok';
    const handle = r.handles[index] as OwnedProxy<Value>;
    // Every handle here was made resolved; write its local target first.
    if (isValid(handle)) handle.v = this.value;
    await expectOutcome(expected, () => update(handle), this.toString());
    if (expected === LifetimeEndedError && h.kind === 'owned') h.state = 'ended';
    if (expected === 'ok') obj.value = this.value;
    await checkValues(m, r);
  }
  toString(): string {
    return `update(#${this.i}, ${this.value})`;
  }
}

class Drop implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    const expected = ownerCheck(m, h) ?? (obj.shared.size > 0 || obj.mut !== null ? BorrowedError : 'ok');
    await expectOutcome(expected, () => drop(r.handles[index] as OwnedProxy<Value>), this.toString());
    if (expected === LifetimeEndedError) h.state = 'ended';
    if (expected === 'ok') {
      h.state = 'invalid';
      obj.alive = false;
      obj.ownerAlive = false;
    }
    await checkValues(m, r);
  }
  toString(): string {
    return `drop(#${this.i})`;
  }
}

class Clone implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0 && m.objects.length < 7;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    const expected = ownerCheck(m, h) ?? (obj.mut !== null ? MutableBorrowError : 'ok');
    const got = await expectOutcome(expected, () => clone(r.handles[index] as OwnedProxy<Value>), this.toString());
    if (expected === LifetimeEndedError) h.state = 'ended';
    // The clone has its own owner and no lifetime.
    if (got) addObject(m, r, obj.value, undefined, got);
    await checkValues(m, r);
  }
  toString(): string {
    return `clone(#${this.i})`;
  }
}

/** A ContextLifetime's close (or the lease's, early). */
class Close implements fc.AsyncCommand<Model, Real> {
  constructor(readonly lifetime: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await (r.lifetimes[this.lifetime] as Lifetime).close();
    endLifetime(m, this.lifetime);
    await checkValues(m, r);
  }
  toString(): string {
    return `close(lifetime ${this.lifetime})`;
  }
}

/** The lease runs out, with nobody closing it: its end is moved 60 ms ahead, and the test waits past it. */
class LeaseEnds implements fc.AsyncCommand<Model, Real> {
  check(m: Readonly<Model>): boolean {
    return !m.ended[LEASE];
  }
  async run(m: Model, r: Real): Promise<void> {
    await (r.lifetimes[LEASE] as LeaseLifetime).extend(new Date(Date.now() + 60));
    await new Promise((resolve) => setTimeout(resolve, 150));
    endLifetime(m, LEASE);
    await checkValues(m, r);
  }
  toString(): string {
    return 'leaseEnds()';
  }
}

/**
 * The process holding a handle dies: it stops renewing, and its lease
 * lapses (here: the lease end is moved into the past, as leaseTtl after a
 * SIGKILL); the next script on the object (here: the renewal of another
 * token) purges it.
 */
class Kill implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    if (h.state !== 'valid' || !obj.alive || (h.kind === 'owned' && obj.ended)) return;
    const state = proxyState(r.handles[index]) as { token: string; key: string };
    renewalOf(r.store).end(state.token, 'its process was killed (test)');
    const keys = objectKeys(r.store, state.key);
    const client = r.store.connector.client;
    await client.zadd(keys.leases, 'XX', 1, state.token);
    await r.store.connector.scripts.run('renew', { data: keys.data, record: keys.record, leases: keys.leases }, {
      token: 'someoneElsesToken00000',
      holder: 'someoneElsesHolder0000',
      ttlMs: 30_000,
      mode: 'hold',
    });
    h.state = 'invalid';
    if (h.kind === 'owned') obj.ownerAlive = false;
    obj.shared.delete(index);
    if (obj.mut === index) obj.mut = null;
    settle(obj);
    await checkValues(m, r);
  }
  toString(): string {
    return `kill(#${this.i})`;
  }
}

const lifetimeIndex = fc.constantFrom(0, 1, 2);
const commands = [
  fc.tuple(fc.integer({ min: 0, max: 99 }), fc.option(lifetimeIndex, { nil: undefined })).map(([v, j]) => new Create(v, j)),
  fc.tuple(fc.nat(), lifetimeIndex).map(([i, j]) => new Add(i, j)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, mutable]) => new Lend(i, mutable)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, mutable]) => new Lend(i, mutable)),
  fc.nat().map((i) => new Release(i)),
  fc.nat().map((i) => new Release(i)),
  fc.tuple(fc.nat(), fc.integer({ min: 100, max: 999 })).map(([i, v]) => new Update(i, v)),
  fc.nat().map((i) => new Drop(i)),
  fc.nat().map((i) => new Clone(i)),
  lifetimeIndex.map((j) => new Close(j)),
  fc.constant(new LeaseEnds()),
  fc.nat().map((i) => new Kill(i)),
];

/** End every handle and lifetime the run left, and check that nothing of its objects is left. */
async function cleanUp(m: Model, r: Real): Promise<void> {
  for (const [i, h] of m.handles.entries()) if (h.state === 'valid' && h.kind !== 'owned') await release(r.handles[i] as RefProxy<Value>);
  for (const [i, h] of m.handles.entries()) {
    const obj = m.objects[h.obj] as ModelObject;
    if (h.state === 'valid' && h.kind === 'owned' && !obj.ended && obj.alive) await drop(r.handles[i] as OwnedProxy<Value>);
  }
  for (const lifetime of r.lifetimes) await lifetime.close();
  for (const key of r.keys) expect(await r.store.exists(key), `object ${key} left`).toBe(false);
}

test('random interleavings of ownership, lifetime ends, lease expiry and dead holders follow the model', { timeout: 300_000 }, async ({ store }) => {
  let runs = 0;
  let operations = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: 'max' }), async (cmds) => {
      const model: Model = { objects: [], handles: [], ended: [false, false, false] };
      const real: Real = {
        store,
        lifetimes: [new ContextLifetime(store), new ContextLifetime(store), new LeaseLifetime(store, { expiry: 600 })],
        handles: [],
        keys: [],
      };
      await new Create(1, 0).run(model, real);
      await new Create(2, LEASE).run(model, real);
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      } finally {
        await cleanUp(model, real);
      }
      runs++;
      operations += [...cmds].length;
    }),
    { numRuns: 60 },
  );
  console.info(`owned lifetimes model test: ${runs} runs, ${operations} commands; outcomes ${JSON.stringify(Object.fromEntries(seen))}`);
  for (const outcome of ['ok', 'LifetimeEndedError', 'AlreadyOwnedError', 'MutableBorrowError', 'BorrowedError', 'ReferenceInvalidError']) {
    expect(seen.get(outcome), outcome).toBeGreaterThan(0);
  }
});
