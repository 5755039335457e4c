// Values that test/harness/global-setup.ts hands to the test workers (`inject('redisUrl')`).
import 'vitest';
import type { RedisTarget } from './target.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis every test uses, found or started once per run by the global setup. */
    redisUrl: string;
    /** The single Redis or the Redis Cluster of this project (`single` or `cluster`). */
    redisTarget: RedisTarget;
  }
}
