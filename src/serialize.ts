/**
 * The bytes stored for an object: a small header, then the payload.
 *
 *     byte 0   0xB7 (magic: written by proxystore-redis)
 *     byte 1   codec: 'M' msgpackr, 'B' raw Buffer, 'T' raw typed array, 'C' custom serializer
 *     byte 2   shape of the value (see {@link Shape})
 *     bytes 3-7  only for 'T': padding, so the payload starts 8-byte aligned
 *
 * Objects go through msgpackr with structured cloning (Map, Set, Date,
 * bigint, typed arrays, cycles survive). Buffers and typed arrays at the top
 * level are stored as their raw bytes, so a large binary value is never
 * re-encoded. The shape is recorded so that a proxy knows what its target is
 * (`Array.isArray`, `instanceof`) before it is resolved.
 *
 * Values that would not come back are refused before anything is written
 * (see {@link refusal} and docs/serialization.md): functions, symbols,
 * WeakMap/WeakSet/WeakRef, Promises, boxed primitives, and instances of
 * classes that do not say how to store them (a `toJSON` method). The check
 * runs inside msgpackr's own walk (an extension that only matches what is
 * refused), so plain data costs nothing more; the path inside the value is
 * looked for only once something was refused.
 *
 * @module
 */
import { Packr, RESERVE_START_SPACE, C1, addExtension } from 'msgpackr';
import { SerializationError } from './errors.js';
import { packingRefs, proxyState } from './proxy/proxy.js';

/** A user serializer: value to bytes (ProxyStore's `serializer`). */
export type Serializer = (value: unknown) => Uint8Array;
/** A user deserializer: bytes to value (ProxyStore's `deserializer`). */
export type Deserializer = (bytes: Buffer) => unknown;

const TYPED_ARRAYS: { [N in TypedArrayName]: (typeof globalThis)[N] } = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

/** The name of a typed array class. */
export type TypedArrayName =
  | 'Int8Array'
  | 'Uint8Array'
  | 'Uint8ClampedArray'
  | 'Int16Array'
  | 'Uint16Array'
  | 'Int32Array'
  | 'Uint32Array'
  | 'Float32Array'
  | 'Float64Array'
  | 'BigInt64Array'
  | 'BigUint64Array';
type AnyTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedArrayName]>;

/** What kind of value a stored object is; known before it is resolved. */
export type Shape =
  | 'object'
  | 'array'
  | 'map'
  | 'set'
  | 'date'
  | 'error'
  | 'regexp'
  | 'buffer'
  | 'string'
  | 'number'
  | 'bigint'
  | 'null'
  | 'undefined'
  | 'boolean'
  | 'function'
  | TypedArrayName;

const SHAPE_CODES: Record<Shape, number> = {
  object: 0x6f, // o
  array: 0x61, // a
  map: 0x6d, // m
  set: 0x73, // s
  date: 0x64, // d
  error: 0x65, // e
  regexp: 0x72, // r
  buffer: 0x62, // b
  string: 0x53, // S
  number: 0x4e, // N
  bigint: 0x49, // I
  null: 0x30, // 0
  undefined: 0x75, // u
  boolean: 0x3f, // ?
  function: 0x66, // f
  Int8Array: 0x01,
  Uint8Array: 0x02,
  Uint8ClampedArray: 0x03,
  Int16Array: 0x04,
  Uint16Array: 0x05,
  Int32Array: 0x06,
  Uint32Array: 0x07,
  Float32Array: 0x08,
  Float64Array: 0x09,
  BigInt64Array: 0x0a,
  BigUint64Array: 0x0b,
};
const SHAPES_BY_CODE = new Map<number, Shape>(
  (Object.entries(SHAPE_CODES) as [Shape, number][]).map(([shape, code]) => [code, shape]),
);

/** Every shape name, for validating refs. */
export const SHAPES: ReadonlySet<string> = new Set(Object.keys(SHAPE_CODES));

const MAGIC = 0xb7;
const CODEC_MSGPACK = 0x4d; // M
const CODEC_BUFFER = 0x42; // B
const CODEC_TYPED = 0x54; // T
const CODEC_CUSTOM = 0x43; // C
const HEADER = 3;
const TYPED_HEADER = 8;

/** The shape of a value. */
export function shapeOf(value: unknown): Shape {
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'bigint':
      return 'bigint';
    case 'boolean':
      return 'boolean';
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'function';
    case 'symbol':
      return 'object';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Buffer.isBuffer(value)) return 'buffer';
  if (ArrayBuffer.isView(value)) {
    const name = typedArrayName(value);
    return name ?? 'object';
  }
  if (value instanceof Map) return 'map';
  if (value instanceof Set) return 'set';
  if (value instanceof Date) return 'date';
  if (value instanceof Error) return 'error';
  if (value instanceof RegExp) return 'regexp';
  return 'object';
}

/** The typed array class of a view, a subclass's base class included. */
function typedArrayName(view: ArrayBufferView): TypedArrayName | undefined {
  for (const [name, cls] of Object.entries(TYPED_ARRAYS) as [TypedArrayName, (typeof TYPED_ARRAYS)[TypedArrayName]][]) {
    if (view instanceof cls) return name;
  }
  return undefined;
}

/**
 * Instances of typed array subclasses (`class Pixels extends Uint8Array`),
 * Buffers excepted. msgpackr tags a nested typed array with its
 * constructor's name, so it wrote a subclass with a code it could not read
 * back: the put worked and every get failed. Stored as the base class
 * instead, as class instances are stored as plain objects. The extension has
 * no type of its own, so the bytes are exactly those of the base class.
 */
class TypedArraySubclass {
  static [Symbol.hasInstance](value: unknown): boolean {
    if (!ArrayBuffer.isView(value) || Buffer.isBuffer(value)) return false;
    const name = typedArrayName(value);
    return name !== undefined && Object.getPrototypeOf(value) !== TYPED_ARRAYS[name].prototype;
  }
}

/**
 * Plain objects (prototype Object.prototype or null) that msgpackr would take
 * for class instances: it tests `value.constructor === Object`, which an own
 * `constructor` key or a null prototype defeats, and then calls `value.toJSON()`
 * if there is one, so data such as `{ constructor: 1, toJSON: 'x' }` could not
 * be stored at all. Written as the plain objects they are.
 */
class PlainObjectInDisguise {
  static [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const proto: unknown = Object.getPrototypeOf(value);
    return (proto === Object.prototype || proto === null) && (value as { constructor?: unknown }).constructor !== Object;
  }
}

// A write that returns the value itself makes msgpackr write it as a plain object.
addExtension({ Class: PlainObjectInDisguise, write: (value: object) => value });

/**
 * msgpackr's own reader of its error extension looks the stored name up in
 * an object literal, so a name like "valueOf" or "constructor" called an
 * Object.prototype method chosen by the data ("valueOf" returned msgpackr's
 * internal table of Error constructors as the decoded value). This reader
 * does the same job with an own-key lookup. msgpackr writes errors as
 * `[name, message, cause]` (plus `errors` for an AggregateError) after a
 * one-byte extension header; this replaces the reader for the whole process.
 */
const ERROR_CLASSES = new Map<string, ErrorConstructor>([
  ['Error', Error],
  ['EvalError', EvalError],
  ['RangeError', RangeError],
  ['ReferenceError', ReferenceError],
  ['SyntaxError', SyntaxError],
  ['TypeError', TypeError],
  ['URIError', URIError],
]);

addExtension({
  type: 0x65,
  read(data: unknown): Error {
    if (!Array.isArray(data)) throw new Error('malformed error extension: expected [name, message, cause]');
    const [name, message, cause, errors] = data as [unknown, string, unknown, unknown];
    if (name === 'AggregateError') return new AggregateError(Array.isArray(errors) ? errors : [], message, { cause });
    const cls = typeof name === 'string' ? ERROR_CLASSES.get(name) : undefined;
    if (cls) return new cls(message, { cause });
    const error = new Error(message, { cause });
    error.name = String(name);
    return error;
  },
});

addExtension({
  Class: TypedArraySubclass,
  write(view: AnyTypedArray): AnyTypedArray {
    const cls = TYPED_ARRAYS[typedArrayName(view) as TypedArrayName];
    return new cls(view.buffer as ArrayBuffer, view.byteOffset, view.length);
  },
});

/** The class instances of a shape inherit from, for `instanceof` before resolution. */
export function prototypeOfShape(shape: Shape): object | null {
  switch (shape) {
    case 'array':
      return Array.prototype;
    case 'map':
      return Map.prototype;
    case 'set':
      return Set.prototype;
    case 'date':
      return Date.prototype;
    case 'error':
      return Error.prototype;
    case 'regexp':
      return RegExp.prototype;
    case 'buffer':
      return Buffer.prototype;
    case 'string':
      return String.prototype;
    case 'number':
      return Number.prototype;
    case 'bigint':
      return BigInt.prototype;
    case 'function':
      return Function.prototype;
    case 'object':
    case 'null':
    case 'undefined':
    case 'boolean':
      return Object.prototype;
    default:
      return TYPED_ARRAYS[shape].prototype;
  }
}

/** Built-in classes stored as they are (exact class; subclasses are refused, typed arrays excepted). */
const STORED_CLASSES: ReadonlySet<object> = new Set<object>([
  Object.prototype,
  Array.prototype,
  Map.prototype,
  Set.prototype,
  Date.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  DataView.prototype,
  Buffer.prototype,
]);

/** Why a value inside a stored object cannot be stored; undefined when it can. */
function refusal(candidate: unknown): string | undefined {
  const type = typeof candidate;
  if (type === 'function') return 'is a function (code is not stored)';
  if (type === 'symbol') return 'is a symbol (msgpack has no symbols)';
  if (type !== 'object' || candidate === null) return undefined;
  const value = candidate as object;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || STORED_CLASSES.has(proto as object)) return undefined;
  // Proxies of this library are stored as their refs.
  if (proxyState(value)) return undefined;
  if (ArrayBuffer.isView(value)) return undefined; // typed arrays and their subclasses
  if (value instanceof Error) return undefined; // name, message and cause are kept
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
    return `is a ${className(value)} (its entries cannot be read, so they cannot be stored)`;
  }
  if (value instanceof Promise) return 'is a Promise: await it and store its value';
  if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt || value instanceof Symbol) {
    return `is a boxed ${className(value)}: store the primitive (${className(value).toLowerCase()}) instead`;
  }
  if (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer) return 'is a SharedArrayBuffer: copy it into an ArrayBuffer or a Buffer';
  // A class that says how to store it: msgpackr stores what toJSON returns, as JSON.stringify does.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  // A plain object whose prototype is another plain object (Object.create(proto)).
  if ((value as { constructor?: unknown }).constructor === Object) return undefined;
  return (
    `is an instance of ${className(value)}: only plain objects, arrays, Map, Set, Date, RegExp, Error, Buffer, typed arrays, ` +
    'ArrayBuffer, DataView, bigint and primitives are stored as they are (a class instance would come back as a plain object ' +
    'without its class). Give the class a toJSON() method (you get back what it returns), store a plain copy, or pass a custom serializer'
  );
}

function className(value: object): string {
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  if (typeof ctor?.name === 'string' && ctor.name !== '' && ctor.name !== 'Object') return ctor.name;
  const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return typeof tag === 'string' ? tag : 'an anonymous class';
}

/** Thrown from inside msgpackr's walk for a refused value; turned into a SerializationError naming its path. */
class Refused extends Error {
  constructor(
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Only while this library packs (msgpackr's extensions are process-wide, and user code may use msgpackr too). */
let validating = 0;

/** Matches exactly the values {@link refusal} refuses; its `write` throws. */
class RefusedValue {
  static [Symbol.hasInstance](value: unknown): boolean {
    return validating > 0 && refusal(value) !== undefined;
  }
}

addExtension({
  Class: RefusedValue,
  write(value: unknown): never {
    throw new Refused(value, refusal(value) as string);
  },
});

function propertyPath(base: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${base}.${key}` : /^\d+$/.test(key) ? `${base}[${key}]` : `${base}[${JSON.stringify(key)}]`;
}

function shownKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'number' || typeof key === 'bigint' || typeof key === 'boolean') return String(key);
  return `<${typeof key}>`;
}

/**
 * The path, from `value`, to the first value that `found` matches, in the
 * order msgpackr walks (own enumerable string keys, Map entries, Set
 * members); only run after a refusal, to name it.
 */
export function findPath(root: unknown, found: (v: unknown) => boolean, rootName = 'value'): string | undefined {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): string | undefined => {
    if (found(v)) return path;
    if (typeof v !== 'object' || v === null || seen.has(v) || proxyState(v) || ArrayBuffer.isView(v)) return undefined;
    seen.add(v);
    if (v instanceof Map) {
      let i = 0;
      for (const [k, entry] of v) {
        const atKey = walk(k, `${path}.keys()[${i}]`) ?? walk(entry, `${path}.get(${shownKey(k)})`);
        if (atKey) return atKey;
        i++;
      }
      return undefined;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const member of v) {
        const at = walk(member, `${path}.values()[${i++}]`);
        if (at) return at;
      }
      return undefined;
    }
    if (v instanceof Error) return walk((v as { cause?: unknown }).cause, `${path}.cause`);
    for (const key of Object.keys(v)) {
      const at = walk((v as Record<string, unknown>)[key], propertyPath(path, key));
      if (at) return at;
    }
    return undefined;
  };
  return walk(root, rootName);
}

/** The SerializationError for a value msgpackr could not (or must not) write. */
function serializationError(value: unknown, shape: Shape, err: unknown): SerializationError {
  if (err instanceof Refused) {
    const path = findPath(value, (v) => v === err.value) ?? 'a value inside it';
    return new SerializationError(`cannot store this value: ${path} ${err.reason}; nothing was written`, { cause: err });
  }
  if (err instanceof Error && /Unknown type: symbol/.test(err.message)) {
    const path = findPath(value, (v) => typeof v === 'symbol') ?? 'a value inside it';
    return new SerializationError(`cannot store this value: ${path} ${refusal(Symbol()) as string}; nothing was written`, { cause: err });
  }
  return new SerializationError(`Failed to serialize a value of shape ${shape}: ${(err as Error).message}`, { cause: err });
}

const packr = new Packr({ structuredClone: true, useBigIntExtension: true });

/** Serialize a value into stored bytes (header + payload). */
export function serialize(value: unknown, serializer?: Serializer): Buffer {
  const shape = shapeOf(value);
  if (serializer) {
    const payload = serializer(value);
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError(
        `the custom serializer must return bytes (a Buffer or Uint8Array), it returned ${payload === null ? 'null' : typeof payload}`,
      );
    }
    return withHeader(CODEC_CUSTOM, shape, payload, HEADER);
  }
  if (shape === 'buffer') return withHeader(CODEC_BUFFER, shape, value as Buffer, HEADER);
  if (ArrayBuffer.isView(value) && shape !== 'object') {
    const view = value as AnyTypedArray;
    return withHeader(CODEC_TYPED, shape, new Uint8Array(view.buffer, view.byteOffset, view.byteLength), TYPED_HEADER);
  }
  let out: Buffer;
  validating++;
  try {
    out = packingRefs(() => packr.pack(value, RESERVE_START_SPACE | HEADER));
  } catch (err) {
    throw serializationError(value, shape, err);
  } finally {
    validating--;
  }
  out[0] = MAGIC;
  out[1] = CODEC_MSGPACK;
  out[2] = SHAPE_CODES[shape];
  return out;
}

/**
 * The stored bytes of a value, as {@link serialize} makes them, in parts
 * whose concatenation they are: the header and the payload itself for
 * Buffers, typed arrays and custom serializers (no copy of the payload), one
 * Buffer for msgpack. For hashing large values without copying them (dedupe).
 */
export function serializeParts(value: unknown, serializer?: Serializer): Uint8Array[] {
  const shape = shapeOf(value);
  let codec: number;
  let payload: Uint8Array;
  let headerLength = HEADER;
  if (serializer) {
    const out = serializer(value);
    if (!(out instanceof Uint8Array)) return [serialize(value, () => out)];
    codec = CODEC_CUSTOM;
    payload = out;
  } else if (shape === 'buffer') {
    codec = CODEC_BUFFER;
    payload = value as Buffer;
  } else if (ArrayBuffer.isView(value) && shape !== 'object') {
    const view = value as AnyTypedArray;
    codec = CODEC_TYPED;
    payload = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    headerLength = TYPED_HEADER;
  } else {
    return [serialize(value)];
  }
  if (payload.byteLength < 64 * 1024) return [withHeader(codec, shape, payload, headerLength)];
  return [withHeader(codec, shape, new Uint8Array(0), headerLength), payload];
}

function withHeader(codec: number, shape: Shape, payload: Uint8Array, headerLength: number): Buffer {
  const out = Buffer.allocUnsafeSlow(headerLength + payload.byteLength);
  out.fill(0, 0, headerLength);
  out[0] = MAGIC;
  out[1] = codec;
  out[2] = SHAPE_CODES[shape];
  out.set(payload, headerLength);
  return out;
}

/** Read the shape from stored bytes without decoding them; undefined if they are not ours. */
export function peekShape(bytes: Uint8Array): Shape | undefined {
  if (bytes.length < HEADER || bytes[0] !== MAGIC) return undefined;
  return SHAPES_BY_CODE.get(bytes[2] as number);
}

/**
 * Where the raw bytes of a stored Buffer or typed array start (3, or 8 for a
 * typed array), from its first stored bytes; undefined for any other value
 * (msgpack, a custom serializer's) or bytes that are not ours. For reads of
 * bytes without decoding (getStream, getRange).
 */
export function rawPayloadStart(header: Uint8Array): number | undefined {
  if (header.length < HEADER || header[0] !== MAGIC) return undefined;
  if (header[1] === CODEC_BUFFER) return HEADER;
  if (header[1] === CODEC_TYPED) return TYPED_HEADER;
  return undefined;
}

/** The stored bytes of an empty Buffer: the header a byte stream's bytes follow (putStream). */
export function bufferHeader(): Buffer {
  return withHeader(CODEC_BUFFER, 'buffer', new Uint8Array(0), HEADER);
}

/**
 * Decode stored bytes. `key` only serves the error message. With a
 * `deserializer`, it receives the payload bytes whatever codec wrote them.
 */
export function deserialize(bytes: Buffer, key: string, deserializer?: Deserializer): unknown {
  const codec = bytes.length >= HEADER && bytes[0] === MAGIC ? bytes[1] : undefined;
  const shape = peekShape(bytes);
  if (codec === undefined || shape === undefined) {
    throw new SerializationError(
      `Failed to deserialize object at key ${key}: the ${bytes.length} bytes stored there were not written by proxystore-redis (unknown header)`,
      { key },
    );
  }
  const payload = bytes.subarray(codec === CODEC_TYPED ? TYPED_HEADER : HEADER);
  if (deserializer) {
    try {
      return deserializer(payload);
    } catch (err) {
      throw new SerializationError(`Failed to deserialize object at key ${key} with the custom deserializer: ${String(err)}`, {
        key,
        cause: err,
      });
    }
  }
  switch (codec) {
    case CODEC_BUFFER:
      return payload;
    case CODEC_TYPED:
      return toTypedArray(shape, payload, key);
    case CODEC_MSGPACK:
      return unpack(payload, key);
    case CODEC_CUSTOM:
      throw new SerializationError(
        `Failed to deserialize object at key ${key}: it was written with a custom serializer; pass the matching deserializer`,
        { key },
      );
    default:
      throw new SerializationError(`Failed to deserialize object at key ${key}: unknown codec 0x${codec.toString(16)}`, {
        key,
      });
  }
}

function unpack(payload: Buffer, key: string): unknown {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (err) {
    throw new SerializationError(`Failed to deserialize object at key ${key}: ${(err as Error).message}`, {
      key,
      cause: err,
    });
  }
  if (value === C1) {
    throw new SerializationError(`Failed to deserialize object at key ${key}: invalid MessagePack (0xC1)`, { key });
  }
  return value;
}

function toTypedArray(shape: Shape, payload: Buffer, key: string): AnyTypedArray {
  if (!(shape in TYPED_ARRAYS)) {
    throw new SerializationError(`Failed to deserialize object at key ${key}: ${shape} is not a typed array`, { key });
  }
  const cls = TYPED_ARRAYS[shape as TypedArrayName];
  if (payload.byteLength % cls.BYTES_PER_ELEMENT !== 0) {
    throw new SerializationError(
      `Failed to deserialize object at key ${key}: ${payload.byteLength} bytes is not a whole number of ${shape} elements`,
      { key },
    );
  }
  // Zero-copy when the reply buffer happens to be aligned; otherwise one copy.
  const aligned = payload.byteOffset % cls.BYTES_PER_ELEMENT === 0 ? payload : Buffer.from(payload);
  return new cls(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / cls.BYTES_PER_ELEMENT);
}
