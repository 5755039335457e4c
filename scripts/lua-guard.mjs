// The arity guard scripts/generate-lua.mjs puts right after each script's header comment.
//
// A script called with other KEYS/ARGV counts than its header declares would otherwise run
// with nil arguments: it fails deep inside with Redis's "script: <sha>, on @user_script:<line>"
// error, or worse, succeeds and writes something. The guard answers a coded
// PSR_INVALID_OPTIONS error instead. A variadic `KEYS[n...]` / `ARGV[n...]` header line makes
// the count a minimum. Calls through src/redis/scripts.ts always match the header; the guard
// is for everything else (raw EVAL, a bug, another client).

function declared(raw, kind) {
  const fixed = [...raw.matchAll(new RegExp(`^-- ${kind}\\[\\d+\\] (\\w+)`, 'gm'))].map((m) => m[1]);
  const rest = new RegExp(`^-- ${kind}\\[\\d+\\.\\.\\.\\] (\\w+)`, 'm').exec(raw)?.[1] ?? null;
  return { fixed, rest };
}

function expects(kind, { fixed, rest }) {
  const names = [...fixed, ...(rest ? [`${rest}...`] : [])];
  return `${rest ? 'at least ' : ''}${fixed.length} ${kind}${names.length > 0 ? ` (${names.join(', ')})` : ''}`;
}

/** The Lua guard for a script `name` whose raw source (with its header) is `raw`. */
export function arityGuard(name, raw) {
  const keys = declared(raw, 'KEYS');
  const args = declared(raw, 'ARGV');
  const test = (kind, d) => `#${kind} ${d.rest ? '<' : '~='} ${d.fixed.length}`;
  const message = `PSR_INVALID_OPTIONS ${name}: expects ${expects('KEYS', keys)} and ${expects('ARGV', args)}, got `;
  return [
    '-- (generated) refuse calls that do not match the header',
    `if ${test('KEYS', keys)} or ${test('ARGV', args)} then`,
    `  return redis.error_reply(${JSON.stringify(message)} .. #KEYS .. ' KEYS and ' .. #ARGV .. ' ARGV')`,
    'end',
  ].join('\n');
}

/** `source` with the guard inserted after its leading comment block (the header). */
export function withArityGuard(name, raw, source) {
  const lines = source.split('\n');
  let end = 0;
  while (end < lines.length && lines[end].startsWith('--')) end++;
  return [...lines.slice(0, end), arityGuard(name, raw), ...lines.slice(end)].join('\n');
}
