/** Shared by the chunked-object suites: a store with a small chunkSize, and the namespace's keys. */
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
