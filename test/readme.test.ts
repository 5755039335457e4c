/**
 * Every TypeScript block of README.md is a file of examples/, shown verbatim
 * after a `<!-- example: path -->` marker (the test runs it, against the
 * test's Redis and namespace, in its own process) or a
 * `<!-- typecheck: path -->` marker (for code that needs what a test run
 * does not have, e.g. a Redis Cluster at fixed addresses: `npm run lint`
 * typechecks it, as it does every example).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, childEnv, runChild } from './harness/child.js';
import { describe, expect, test } from './harness/fixtures.js';

const DOC = 'README.md';
const doc = readFileSync(join(ROOT, DOC), 'utf8');

interface Block {
  marker: 'example' | 'typecheck' | undefined;
  path: string | undefined;
  code: string;
}

function codeBlocks(): Block[] {
  const blocks: Block[] = [];
  for (const m of doc.matchAll(/(?:<!-- (example|typecheck): (\S+) -->\n)?```(?:ts|typescript)\n([\s\S]*?)```/g)) {
    blocks.push({ marker: m[1] as Block['marker'], path: m[2], code: m[3] as string });
  }
  return blocks;
}

const runnable = [...new Set(codeBlocks().filter((b) => b.marker === 'example').map((b) => b.path as string))];

describe(DOC, () => {
  test('every TypeScript block is an example file, shown verbatim', () => {
    const blocks = codeBlocks();
    expect(blocks.length).toBeGreaterThan(5);
    for (const block of blocks) {
      expect(block.path, `a \`\`\`ts block without an <!-- example|typecheck: ... --> marker:\n${block.code}`).toBeDefined();
      const file = readFileSync(join(ROOT, block.path as string), 'utf8');
      expect(block.code, `${DOC} must show ${block.path} verbatim`).toBe(file);
    }
  });

  test.for(runnable)('%s runs and leaves nothing without a TTL', async (example, { redisUrl, namespace }) => {
    const out = await runChild(example, {
      env: { ...childEnv({ redisUrl, namespace }), PROXYSTORE_REDIS_URL: redisUrl, PROXYSTORE_REDIS_NAMESPACE: namespace },
      timeoutMs: 60_000,
    });
    expect(out.code, out.stderr).toBe(0);
  });
});
