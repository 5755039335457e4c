/**
 * The command line: parse, connect, run a command, and turn every failure
 * into one line on stderr and an exit code:
 *
 * - 0: done
 * - 1: failed (cannot reach Redis, a Redis error, gc refused)
 * - 2: wrong usage (unknown option or command, no namespace, a bad value)
 * - 3: `inspect KEY` found neither an object nor a lifetime
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { InvalidOptionsError } from '../errors.js';
import { PROGRAM, UsageError, helpText, parseCli, type CliOptions } from './args.js';
import { connect, type Connection } from './connect.js';
import { oneLine } from './format.js';
import { jsonSink, runGc, textSink } from './gc.js';
import { inspectKey, inspectNamespace, renderInspect, renderKey } from './inspect.js';
import { silentProgress, terminalProgress, type Progress } from './progress.js';

/** Exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3 } as const;

/** What a run writes; process.stdout/stderr by default, strings in tests. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether to draw a progress bar (stdout is a terminal). */
  tty: boolean;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  tty: process.stdout.isTTY === true,
};

function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** A progress bar when stdout is a terminal (and the output is not JSON). */
function progressFor(options: CliOptions, io: Io): Progress {
  if (!io.tty || options.json) return { ...silentProgress, log: (line) => io.out(`${line}\n`) };
  return terminalProgress(process.stdout);
}

async function run(options: CliOptions, conn: Connection, io: Io): Promise<number> {
  const progress = progressFor(options, io);
  if (options.command === 'inspect') {
    if (options.key !== undefined) {
      const report = await inspectKey(conn, options.key, options.limit);
      if (!report) {
        io.err(`${PROGRAM}: no object or lifetime ${JSON.stringify(options.key)} in namespace ${conn.connector.namespace}\n`);
        return EXIT.notFound;
      }
      io.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderKey(report)}\n`);
      return EXIT.ok;
    }
    const report = await inspectNamespace(conn, options.limit, progress);
    io.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderInspect(report)}\n`);
    return EXIT.ok;
  }
  const gcOptions = { yes: options.yes, olderThan: options.olderThan };
  const sink = options.json
    ? jsonSink(
        {
          version: 1,
          command: 'gc',
          namespace: conn.connector.namespace,
          server: conn.describe(),
          cluster: conn.isCluster,
          dryRun: !options.yes,
          olderThanSeconds: options.olderThan ?? null,
        },
        io.out,
      )
    : textSink(conn.connector.namespace, gcOptions, (line) => progress.log(line));
  await runGc(conn, gcOptions, sink, progress);
  return EXIT.ok;
}

/** Run the command line; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const fail = (code: number, message: string): number => {
    io.err(`${PROGRAM}: ${oneLine(message)}\n`);
    return code;
  };
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) return fail(EXIT.usage, `${err.message} (see ${PROGRAM} --help)`);
    return fail(EXIT.failed, (err as Error).message);
  }
  if (options.command === 'version') {
    io.out(`${version()}\n`);
    return EXIT.ok;
  }
  if (options.command === 'help') {
    io.out(`${helpText(options.helpFor)}\n`);
    return EXIT.ok;
  }

  let conn: Connection | undefined;
  try {
    conn = await connect({ url: options.url, cluster: options.cluster, namespace: options.namespace, timeoutMs: options.timeoutMs });
    return await run(options, conn, io);
  } catch (err) {
    if (err instanceof InvalidOptionsError && conn === undefined) return fail(EXIT.usage, err.message);
    const message = err instanceof Error ? err.message : String(err);
    return fail(EXIT.failed, /timed? ?out/i.test(message) ? `${message} (a Redis command took longer than --timeout)` : message);
  } finally {
    conn?.close();
  }
}
