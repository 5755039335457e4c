/**
 * Resolves the ref in argv[2] (JSON) through a store it builds from
 * PROXYSTORE_REDIS_URL/NAMESPACE, prints the value, and closes nothing: the
 * process must still exit by itself.
 */
import { fromRef, resolve } from '../../src/index.js';

const value = await resolve(fromRef(JSON.parse(process.argv[2] as string)));
console.log(JSON.stringify(value));
