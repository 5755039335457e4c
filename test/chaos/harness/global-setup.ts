/**
 * Vitest global setup of the `chaos` project (only with CHAOS=1). Each test file starts its
 * own 3-master + 3-replica cluster (so the faults of one never leak into the next); this setup
 * checks that the binaries are there, validates the size knobs once, gives the files a directory
 * for their figures, and at the end prints every scenario's table together (and writes
 * summary.md there).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { compareScenarios, type ScenarioFile } from './analysis.js';
import { chaosConfig } from './config.js';
import { expectMode } from './expectations.js';

const run = promisify(execFile);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const binary of ['redis-server', 'redis-cli']) {
    try {
      await run(binary, ['--version'], { timeout: 5_000 });
    } catch {
      throw new Error(`the chaos suite starts a Redis Cluster from ${binary}, which is not on PATH`);
    }
  }
  const config = chaosConfig();
  const mode = expectMode();
  const dir = process.env.CHAOS_REPORT_DIR ?? (await mkdtemp(join(tmpdir(), 'proxystore-chaos-')));
  await mkdir(dir, { recursive: true });
  project.provide('chaosReportDir', dir);
  console.log(
    `[proxystore-redis] chaos suite, size ${config.size} (${config.seconds} s of workload and ${config.rounds} fault(s) per scenario, ` +
      `${config.processes} worker processes), violations ${mode === 'zero' ? 'must be 0' : 'measured and printed'}; figures in ${dir}`,
  );
  return async () => {
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
    const scenarios: ScenarioFile[] = [];
    for (const f of files) {
      try {
        scenarios.push(JSON.parse(await readFile(join(dir, f), 'utf8')) as ScenarioFile);
      } catch {
        // a scenario that failed before writing its figures
      }
    }
    if (scenarios.length === 0) return;
    const comparison = compareScenarios(scenarios);
    const tables = scenarios.map((s) => s.table).join('\n\n');
    await writeFile(
      join(dir, 'summary.md'),
      `# Chaos figures (${config.size}, ${config.processes} workers)\n\n${comparison}\n\n\`\`\`\n${tables}\n\`\`\`\n`,
    );
    console.log(`\n${comparison}\n\n[proxystore-redis] chaos figures, with each scenario's full table, written to ${dir}/summary.md`);
  };
}
