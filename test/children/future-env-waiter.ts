/**
 * A process with no store of its own (it builds one from
 * PROXYSTORE_REDIS_URL, as a serverless handler does) that resolves the
 * proxy of a future it gets as JSON in argv, prints the value and simply
 * ends, without closing anything: its idle blocking connection must not keep
 * it alive.
 */
import { proxyReviver, resolve } from '../../src/index.js';

const { input } = JSON.parse(process.argv[2] as string, proxyReviver) as { input: number[] };
console.log(JSON.stringify(await resolve(input)));
