/**
 * Stage A of examples/future-pipeline.ts in its own process: a generator
 * worker that processes one job (it sets the job's future) and exits.
 */
import { Redis } from 'ioredis';
import { ENV_NAMESPACE, ENV_URL, RedisConnector, Store } from '../../src/index.js';
import { STORE, startGenerator } from '../../examples/future-pipeline.js';

const url = process.env[ENV_URL] as string;
const namespace = process.env[ENV_NAMESPACE] as string;
const store = new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = startGenerator(connection, namespace);
await new Promise<void>((resolve) => worker.once('completed', () => resolve()));
await worker.close();
await connection.quit();
await store.close();
