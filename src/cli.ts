#!/usr/bin/env node
/**
 * `npx proxystore-redis`: inspect a namespace and evict its orphans.
 * See docs/cli.md; the code is in src/cli/.
 *
 * @module
 */
import { main } from './cli/main.js';

process.exitCode = await main(process.argv.slice(2));
