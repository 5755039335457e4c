/**
 * Vitest global setup: find or start one Redis for the whole run (see DESIGN.md §6 for the
 * order) and hand its URL to the workers, which read it with `inject('redisUrl')`.
 */
import type { TestProject } from 'vitest/node';
import { findOrStartRedis } from '../../scripts/local-redis.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await findOrStartRedis();
  console.log(`[proxystore-redis] tests use Redis at ${redis.url} (source: ${redis.source})`);
  project.provide('redisUrl', redis.url);
  project.provide('redisTarget', { kind: 'single', url: redis.url });
  return async () => {
    await redis.stop();
  };
}
