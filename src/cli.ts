#!/usr/bin/env node
/**
 * `npx proxystore-redis`: inspect a namespace and evict its orphans.
 * See docs/cli.md; the code is in src/cli/.
 *
 * @module
 */
import { main } from './cli/main.js';

// Output piped into `head` and the like: when the reader goes away, stop
// quietly, as command-line tools do, instead of an unhandled EPIPE trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
