/**
 * docs/lifetimes.md shows the files of examples/lifetimes/ verbatim, each
 * after a `<!-- example: path -->` marker, and every example runs, against
 * the test's Redis and namespace, in its own process. So the guide's code is
 * code that works.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, childEnv, runChild } from '../harness/child.js';
import { describe, expect, test } from '../harness/fixtures.js';

const DOC = 'docs/lifetimes.md';
const EXAMPLES = 'examples/lifetimes';

const doc = readFileSync(join(ROOT, DOC), 'utf8');
const examples = readdirSync(join(ROOT, EXAMPLES))
  .filter((f) => f.endsWith('.ts'))
  .sort()
  .map((f) => `${EXAMPLES}/${f}`);

/** The ```ts blocks of the doc, with the example each one says it shows. */
function codeBlocks(): { example: string | undefined; code: string }[] {
  const blocks: { example: string | undefined; code: string }[] = [];
  for (const m of doc.matchAll(/(?:<!-- example: (\S+) -->\n)?```ts\n([\s\S]*?)```/g)) {
    blocks.push({ example: m[1], code: m[2] as string });
  }
  return blocks;
}

describe(DOC, () => {
  test('every ```ts block of the doc is an example file, shown verbatim', () => {
    const blocks = codeBlocks();
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      expect(block.example, `a \`\`\`ts block without an <!-- example: ... --> marker:\n${block.code}`).toBeDefined();
      const file = readFileSync(join(ROOT, block.example as string), 'utf8');
      expect(block.code, `${DOC} must show ${block.example} verbatim`).toBe(file);
    }
  });

  test('every example file is in the doc', () => {
    const shown = new Set(codeBlocks().map((b) => b.example));
    for (const example of examples) expect(shown.has(example), `${example} is not shown in ${DOC}`).toBe(true);
  });

  test.for(examples)('%s runs and leaves nothing without a TTL', async (example, { redisUrl, namespace }) => {
    const out = await runChild(example, {
      env: { ...childEnv({ redisUrl, namespace }), PROXYSTORE_REDIS_URL: redisUrl, PROXYSTORE_REDIS_NAMESPACE: namespace },
      timeoutMs: 60_000,
    });
    expect(out.code, out.stderr).toBe(0);
  });
});
