/**
 * The harness's own test child. Sends `{ type: 'ready', pid, redisUrl, namespace, argv }`
 * first, then by mode (first argument):
 * - `exit <code>`: writes a line to stdout and one to stderr, exits with <code>;
 * - `serve` (default): answers `{ type: 'echo', value }` with the same message and exits on
 *   `{ type: 'exit', code }`;
 * - `hang`: never exits (ignores SIGTERM too), for timeout and SIGKILL tests.
 */
import { CHILD_ENV } from '../harness/child.js';

type Msg = { type: 'echo'; value: unknown } | { type: 'exit'; code: number };

function send(msg: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('echo.ts must be started with an IPC channel'));
    process.send(msg, undefined, {}, (err) => (err ? reject(err) : resolve()));
  });
}

const [mode = 'serve', arg] = process.argv.slice(2);

await send({
  type: 'ready',
  pid: process.pid,
  redisUrl: process.env[CHILD_ENV.redisUrl],
  namespace: process.env[CHILD_ENV.namespace],
  argv: process.argv.slice(2),
});

if (mode === 'exit') {
  process.stdout.write('stdout from echo\n');
  process.stderr.write('stderr from echo\n');
  process.exitCode = Number(arg ?? 0);
} else if (mode === 'hang') {
  process.on('SIGTERM', () => {});
  setInterval(() => {}, 1_000);
} else {
  process.on('message', (msg: Msg) => {
    if (msg.type === 'exit') {
      process.exitCode = msg.code;
      process.removeAllListeners('message'); // lets the IPC channel, and so the process, end
      process.channel?.unref();
    } else {
      void send({ type: 'echo', value: msg.value });
    }
  });
}
