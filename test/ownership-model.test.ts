/**
 * Model-based test of the ownership rules: fast-check drives random sequences
 * of ownedProxy/borrow/mutBorrow/release/update/drop/clone/move on a real
 * Redis and checks every outcome (success, or the exact error class) and
 * every stored value against a small model of ProxyStore's rules.
 */
import fc from 'fast-check';
import {
  BorrowedError,
  InvalidOptionsError,
  MutableBorrowError,
  ReferenceInvalidError,
  ReferenceNotOwnedError,
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  isValid,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefProxy,
  type Store,
} from '../src/index.js';
import { expect, test } from './harness/ownership.js';

type Value = { v: number };
type Kind = 'owned' | 'ref' | 'refmut';

interface ModelObject {
  value: number;
  alive: boolean;
  shared: Set<number>;
  mut: number | null;
}
interface ModelHandle {
  obj: number;
  kind: Kind;
  valid: boolean;
}
interface Model {
  objects: ModelObject[];
  handles: ModelHandle[];
}
interface Real {
  store: Store;
  /** Real handles, by the same index as the model's. */
  handles: object[];
  /** Store key of each object. */
  keys: string[];
}

type Outcome = 'ok' | (new (...args: never[]) => Error);

/** How often each outcome was seen, to show that the runs reach every rule. */
const seen = new Map<string, number>();

/** Run `op` and check that it succeeds or fails with `expected`. */
async function expectOutcome<R>(expected: Outcome, op: () => Promise<R>): Promise<R | undefined> {
  const name = expected === 'ok' ? 'ok' : expected.name;
  seen.set(name, (seen.get(name) ?? 0) + 1);
  if (expected === 'ok') return op();
  const err = await op().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${expected.name}`).toBeInstanceOf(expected);
  return undefined;
}

async function checkValues(m: Model, r: Real): Promise<void> {
  for (const [i, obj] of m.objects.entries()) {
    const stored = await r.store.get<Value>(r.keys[i] as string);
    expect(stored, `object ${i}`).toEqual(obj.alive ? { v: obj.value } : undefined);
  }
}

function pick(m: Model, i: number): [number, ModelHandle] {
  const index = i % m.handles.length;
  return [index, m.handles[index] as ModelHandle];
}

/** What an owner-only operation (borrow, mutBorrow, drop, clone) meets first. */
function ownerCheck(h: ModelHandle): Outcome | undefined {
  if (h.kind !== 'owned') return ReferenceNotOwnedError;
  if (!h.valid) return ReferenceInvalidError;
  return undefined;
}

function addHandle(m: Model, r: Real, obj: number, kind: Kind, real: object): number {
  m.handles.push({ obj, kind, valid: true });
  r.handles.push(real);
  return m.handles.length - 1;
}

class Create implements fc.AsyncCommand<Model, Real> {
  constructor(readonly value: number) {}
  check(m: Readonly<Model>): boolean {
    return m.objects.length < 4;
  }
  async run(m: Model, r: Real): Promise<void> {
    const owned = await r.store.ownedProxy<Value>({ v: this.value });
    m.objects.push({ value: this.value, alive: true, shared: new Set(), mut: null });
    r.keys.push(getKey(owned));
    addHandle(m, r, m.objects.length - 1, 'owned', owned);
    await checkValues(m, r);
  }
  toString(): string {
    return `create(${this.value})`;
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
    const expected =
      ownerCheck(h) ?? (obj.mut !== null || (this.mutable && obj.shared.size > 0) ? MutableBorrowError : 'ok');
    const owned = r.handles[index] as OwnedProxy<Value>;
    const got = await expectOutcome<object>(expected, () => (this.mutable ? mutBorrow(owned) : borrow(owned)));
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
    const expected: Outcome = h.kind === 'owned' ? InvalidOptionsError : !h.valid ? ReferenceInvalidError : 'ok';
    await expectOutcome(expected, () => release(r.handles[index] as RefProxy<Value>));
    if (expected === 'ok') {
      const obj = m.objects[h.obj] as ModelObject;
      h.valid = false;
      obj.shared.delete(index);
      if (obj.mut === index) obj.mut = null;
    }
    expect(isValid(r.handles[index])).toBe(h.valid);
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
        : !h.valid
          ? ReferenceInvalidError
          : h.kind === 'owned' && (obj.shared.size > 0 || obj.mut !== null)
            ? MutableBorrowError
            : 'ok';
    const handle = r.handles[index] as OwnedProxy<Value>;
    // A valid handle is written locally first (revived ones resolve first).
    if (isValid(handle)) {
      await resolve(handle);
      handle.v = this.value;
    }
    await expectOutcome(expected, () => update(handle));
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
    const expected = ownerCheck(h) ?? (obj.shared.size > 0 || obj.mut !== null ? BorrowedError : 'ok');
    await expectOutcome(expected, () => drop(r.handles[index] as OwnedProxy<Value>));
    if (expected === 'ok') {
      h.valid = false;
      obj.alive = false;
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
    return m.handles.length > 0 && m.objects.length < 6;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    const obj = m.objects[h.obj] as ModelObject;
    const expected = ownerCheck(h) ?? (obj.mut !== null ? MutableBorrowError : 'ok');
    const got = await expectOutcome(expected, () => clone(r.handles[index] as OwnedProxy<Value>));
    if (got) {
      m.objects.push({ value: obj.value, alive: true, shared: new Set(), mut: null });
      r.keys.push(getKey(got));
      addHandle(m, r, m.objects.length - 1, 'owned', got);
    }
    await checkValues(m, r);
  }
  toString(): string {
    return `clone(#${this.i})`;
  }
}

/** toRef + fromRef: the handle moves; the old one is invalid, the revived one holds it. */
class Move implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check(m: Readonly<Model>): boolean {
    return m.handles.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [index, h] = pick(m, this.i);
    if (!h.valid) {
      expect(() => toRef(r.handles[index])).toThrow(ReferenceInvalidError);
      return;
    }
    const revived = fromRef<Value>(JSON.parse(JSON.stringify(r.handles[index])));
    h.valid = false;
    const id = addHandle(m, r, h.obj, h.kind, revived);
    const obj = m.objects[h.obj] as ModelObject;
    if (obj.shared.delete(index)) obj.shared.add(id);
    if (obj.mut === index) obj.mut = id;
    expect(isValid(r.handles[index])).toBe(false);
    await checkValues(m, r);
  }
  toString(): string {
    return `move(#${this.i})`;
  }
}

const commands = [
  fc.integer({ min: 0, max: 99 }).map((v) => new Create(v)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, mutable]) => new Lend(i, mutable)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, mutable]) => new Lend(i, mutable)),
  fc.nat().map((i) => new Release(i)),
  fc.tuple(fc.nat(), fc.integer({ min: 100, max: 999 })).map(([i, v]) => new Update(i, v)),
  fc.nat().map((i) => new Drop(i)),
  fc.nat().map((i) => new Clone(i)),
  fc.nat().map((i) => new Move(i)),
];

/** End every handle the run left, so the next run (and the leak check) starts clean. */
async function cleanUp(m: Model, r: Real): Promise<void> {
  for (const [i, h] of m.handles.entries()) if (h.valid && h.kind !== 'owned') await release(r.handles[i] as RefProxy<Value>);
  for (const [i, h] of m.handles.entries()) if (h.valid && h.kind === 'owned') await drop(r.handles[i] as OwnedProxy<Value>);
  for (const key of r.keys) expect(await r.store.exists(key)).toBe(false);
}

test('random sequences of ownership operations follow the model of the rules', { timeout: 120_000 }, async ({ store }) => {
  let runs = 0;
  let operations = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 50, size: 'max' }), async (cmds) => {
      const model: Model = { objects: [], handles: [] };
      const real: Real = { store, handles: [], keys: [] };
      const first = new Create(1);
      await first.run(model, real);
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      } finally {
        await cleanUp(model, real);
      }
      runs++;
      operations += [...cmds].length;
    }),
    { numRuns: 150 },
  );
  console.info(`model test: ${runs} runs, ${operations} commands; outcomes ${JSON.stringify(Object.fromEntries(seen))}`);
  for (const outcome of ['ok', 'MutableBorrowError', 'BorrowedError', 'ReferenceInvalidError', 'ReferenceNotOwnedError', 'InvalidOptionsError']) {
    expect(seen.get(outcome), outcome).toBeGreaterThan(0);
  }
});
