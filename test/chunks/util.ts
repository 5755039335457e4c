/** Shared by the chunked-object suites: a store with a small chunkSize, and the namespace's keys. */
import { Readable } from 'node:stream';
import { RedisConnector, Store, type StoreOptions } from '../../src/index.js';
import { connectionOptions, type RedisTarget } from '../harness/store-fixture.js';

/** 1 KiB: the values stay small and the tests fast. */
export const CHUNK = 1024;

/** A registered store on the target whose values over {@link CHUNK} bytes are chunked. */
export function chunkedStore(target: RedisTarget, namespace: string, name = `chunks-${namespace}-${Math.random()}`, options: StoreOptions = {}): Store {
  return new Store(name, new RedisConnector({ ...connectionOptions(target), namespace }), { register: true, chunkSize: CHUNK, ...options });
}

/** Every key of the store's objects and lifetimes (`<ns>:{*`), on every master. */
export async function keysOf(store: Store): Promise<string[]> {
  const client = store.connector.client;
  const nodes = 'nodes' in client ? client.nodes('master') : [client];
  const found: string[] = [];
  for (const node of nodes) found.push(...(await node.keys(`${store.namespace}:{*`)));
  return found;
}

/**
 * Record the field of every chunk read (`HGET <w>:<i>`) the store sends, by
 * either path: the raw chunk connection (src/redis/raw.ts) or ioredis's
 * `hgetBuffer` (its fallback). `restore` puts both back.
 */
export function watchChunkReads(store: Store): { fields: string[]; restore: () => void } {
  const fields: string[] = [];
  const client = store.connector.client as unknown as { hgetBuffer: (k: string, f: string) => Promise<Buffer | null> };
  const raw = store.connector.raw as unknown as { readInto: (k: string, f: string, ...rest: unknown[]) => Promise<boolean> };
  const hget = client.hgetBuffer;
  const readInto = raw.readInto;
  client.hgetBuffer = function (this: unknown, k: string, f: string) {
    fields.push(f);
    return hget.call(this, k, f);
  };
  raw.readInto = function (this: unknown, k: string, f: string, ...rest: unknown[]) {
    fields.push(f);
    return readInto.call(this, k, f, ...rest).then((done) => {
      // Not carried raw: ioredis's hgetBuffer reads it next (and is counted there).
      if (!done) fields.splice(fields.lastIndexOf(f), 1);
      return done;
    });
  };
  return {
    fields,
    restore: () => {
      client.hgetBuffer = hget;
      raw.readInto = readInto;
    },
  };
}

/** A slow producer of `value`: one {@link CHUNK}-sized part every `delayMs`; `at` says how far it got. */
export function slowSource(value: Buffer, delayMs: number): { stream: Readable; at: () => number } {
  let at = 0;
  const stream = new Readable({
    read() {
      setTimeout(() => {
        if (at >= value.length) return void this.push(null);
        this.push(value.subarray(at, at + CHUNK));
        at += CHUNK;
      }, delayMs);
    },
  });
  return { stream, at: () => at };
}
