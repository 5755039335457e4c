/**
 * Run TypeScript files (normally `test/children/*.ts`) in real child processes, with
 * `node --import tsx` and an IPC channel, so a child can `process.send(msg)` and receive
 * messages. No vitest dependency: children may import the constants below.
 *
 * A child gets this process's environment plus `opts.env`; pass it the run's Redis and the
 * test's namespace with `childEnv({ redisUrl, namespace })` and read them in the child from
 * `process.env[CHILD_ENV.redisUrl]` / `process.env[CHILD_ENV.namespace]`.
 *
 * In a child, `process.send` is asynchronous: `process.exit()` or `process.disconnect()` right
 * after it loses messages. Exit from the send callback (`process.send(msg, () => process.exit(0))`)
 * or set `process.exitCode` and let the event loop drain. Messages use Node's 'advanced'
 * serialization (structured clone), so Buffers, Maps and bigints survive the trip.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: relative child paths and the child's cwd are resolved from here. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Names of the environment variables through which a test hands its context to a child. */
export const CHILD_ENV = {
  redisUrl: 'REDIS_URL',
  namespace: 'PROXYSTORE_TEST_NAMESPACE',
} as const;

export function childEnv(ctx: { redisUrl: string; namespace: string }): Record<string, string> {
  return { [CHILD_ENV.redisUrl]: ctx.redisUrl, [CHILD_ENV.namespace]: ctx.namespace };
}

export interface ChildOptions {
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
  /** Arguments after the file name (`process.argv.slice(2)` in the child). */
  args?: string[];
  /** Extra Node flags, after `--import tsx`. */
  execArgv?: string[];
  /** Defaults to the repository root. */
  cwd?: string;
}

export interface RunChildOptions extends ChildOptions {
  /** Kill (SIGKILL) and reject after this long; default 20 s. */
  timeoutMs?: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildResult extends ChildExit {
  /** The child's process id (it has exited by then). */
  pid: number;
  stdout: string;
  stderr: string;
  messages: unknown[];
}

export interface ChildHandle {
  readonly pid: number;
  /** Every message received so far, in order (live array). */
  readonly messages: unknown[];
  readonly stdout: string;
  readonly stderr: string;
  /**
   * The first message, among those already received and those to come, that satisfies
   * `pred`. Rejects if the child exits first or after `timeoutMs` (default 10 s).
   */
  waitForMessage<T = unknown>(pred: (msg: unknown) => boolean, timeoutMs?: number): Promise<T>;
  send(msg: unknown): Promise<void>;
  kill(signal?: NodeJS.Signals): boolean;
  /** Settles once the process has exited and its output has been read; rejects if it could not start. */
  readonly exited: Promise<ChildExit>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test runner that dies must not leave children behind.
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** SIGKILL every child still running and wait for them; for an `afterEach`/`afterAll`. */
export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((res) => {
          if (c.exitCode !== null || c.signalCode !== null) return res();
          c.once('exit', () => res());
          c.kill('SIGKILL');
        }),
    ),
  );
}

function resolveFile(file: string | URL): string {
  if (file instanceof URL) return fileURLToPath(file);
  return isAbsolute(file) ? file : resolve(ROOT, file);
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(empty)';
}

/** Start a long-running child: talk to it, kill it, wait for it. */
export function spawnChild(file: string | URL, opts: ChildOptions = {}): ChildHandle {
  const path = resolveFile(file);
  const child = fork(path, opts.args ?? [], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    // Replace, not extend, this process's flags: a vitest worker's are not meant for children.
    execArgv: ['--import', 'tsx', ...(opts.execArgv ?? [])],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced', // structured clone: Buffers, Maps, bigints survive the trip
  });
  track(child);

  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));

  const messages: unknown[] = [];
  const messageListeners = new Set<(msg: unknown) => void>();
  const exitListeners = new Set<() => void>();
  child.on('message', (msg) => {
    messages.push(msg);
    for (const l of [...messageListeners]) l(msg);
  });

  const streamsClosed = Promise.all(
    [child.stdout, child.stderr].map(
      (s) => new Promise<void>((res) => (s && !s.closed ? s.once('close', () => res()) : res())),
    ),
  );
  const exited = new Promise<ChildExit>((resolveExit, rejectExit) => {
    child.once('error', (err) => {
      rejectExit(new Error(`child ${path} failed: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      // The output pipes close right after exit, unless a grandchild holds them: don't wait
      // for it.
      const grace = new Promise<void>((res) => setTimeout(res, 1_000).unref());
      void Promise.race([streamsClosed, grace]).then(() => resolveExit({ code, signal }));
    });
  });
  // Waiters learn of the exit only once the output has been read, so that messages and
  // stderr sent just before exiting are in their error message. (Also: a caller that never
  // awaits `exited` must not see an unhandled rejection.)
  let hasExited = false;
  const notifyExit = () => {
    hasExited = true;
    for (const l of [...exitListeners]) l();
  };
  exited.then(notifyExit, notifyExit);

  const label = () => `child ${path} (pid ${child.pid})`;

  return {
    get pid() {
      return child.pid ?? -1;
    },
    messages,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitForMessage<T = unknown>(pred: (msg: unknown) => boolean, timeoutMs = 10_000): Promise<T> {
      const seen = messages.find(pred);
      if (seen !== undefined) return Promise.resolve(seen as T);
      return new Promise<T>((res, rej) => {
        const cleanup = () => {
          clearTimeout(timer);
          messageListeners.delete(onMessage);
          exitListeners.delete(onExit);
        };
        const onMessage = (msg: unknown) => {
          if (!pred(msg)) return;
          cleanup();
          res(msg as T);
        };
        const onExit = () => {
          cleanup();
          rej(
            new Error(
              `${label()} exited (code ${child.exitCode}, signal ${child.signalCode}) before the ` +
                `awaited message; got ${JSON.stringify(messages)}\n--- stderr ---\n${tail(stderr)}`,
            ),
          );
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(
            new Error(
              `${label()} sent no matching message within ${timeoutMs} ms; got ` +
                `${JSON.stringify(messages)}\n--- stderr ---\n${tail(stderr)}`,
            ),
          );
        }, timeoutMs);
        messageListeners.add(onMessage);
        exitListeners.add(onExit);
        if (hasExited) onExit();
      });
    },
    send(msg: unknown): Promise<void> {
      return new Promise((res, rej) => {
        if (!child.connected) return rej(new Error(`${label()}: IPC channel is closed`));
        child.send(msg as object, (err) => (err ? rej(err) : res()));
      });
    },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      return child.kill(signal);
    },
    exited,
  };
}

/**
 * Run a child to completion and collect its exit status, output and messages. A non-zero exit
 * resolves (assert on `code`); a child still running after `timeoutMs` (default 20 s) is
 * killed and the promise rejects with its stderr.
 */
export async function runChild(file: string | URL, opts: RunChildOptions = {}): Promise<ChildResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const handle = spawnChild(file, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    handle.kill('SIGKILL');
  }, timeoutMs);
  try {
    const { code, signal } = await handle.exited;
    if (timedOut) {
      throw new Error(
        `child ${resolveFile(file)} (pid ${handle.pid}) timed out after ${timeoutMs} ms and was ` +
          `killed\n--- stderr ---\n${tail(handle.stderr)}`,
      );
    }
    return { pid: handle.pid, code, signal, stdout: handle.stdout, stderr: handle.stderr, messages: handle.messages };
  } finally {
    clearTimeout(timer);
  }
}
