/**
 * Checks of the options objects of the public API, so that a plain
 * JavaScript caller gets the safety TypeScript gives: an unknown key
 * (`{ evcit: true }`, `{ lifetim: lt }`) is an {@link InvalidOptionsError}
 * with a "did you mean" hint instead of being silently ignored, and number
 * options are checked against a unit and a range when they are given.
 *
 * @module
 */
import { InvalidOptionsError } from './errors.js';

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two short strings. */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const prev = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The allowed name closest to `key`, if it is close enough to be a typo. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = key.toLowerCase();
  for (const name of allowed) {
    const d = name.toLowerCase() === lower ? 0 : distance(lower, name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  // A third of the name, at least 1 and at most 3 edits.
  return best !== undefined && bestDistance <= Math.min(3, Math.max(1, Math.floor(best.length / 3))) ? best : undefined;
}

/**
 * Throw an {@link InvalidOptionsError} when `options` is not an object or
 * has an own key not in `allowed`; `where` names the call (`store.put`,
 * `new Store`). `undefined` (no options) passes. Symbol keys are not looked at.
 *
 * @example
 * ```ts
 * checkOptions('store.proxy', { evcit: true }, ['evict', 'lifetime']);
 * // InvalidOptionsError: store.proxy: unknown option `evcit` (did you mean `evict`?); ...
 * ```
 */
export function checkOptions(where: string, options: unknown, allowed: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionsError(`${where}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const key in options) {
    if (!Object.prototype.hasOwnProperty.call(options, key) || allowed.includes(key)) continue;
    const hint = closest(key, allowed);
    throw new InvalidOptionsError(
      `${where}: unknown option \`${key}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; ` +
        (allowed.length ? `the options are ${allowed.map((k) => `\`${k}\``).join(', ')}` : 'it takes no options'),
    );
  }
}

/** A range for {@link checkNumber}. */
export interface NumberRange {
  /** The unit, shown in the message ("seconds", "milliseconds"). */
  unit?: string;
  /** Smallest allowed value (inclusive). */
  min: number;
  /** Largest allowed value (inclusive). */
  max: number;
  /** Only whole numbers. */
  integer?: boolean;
}

/**
 * `value` when it is a finite number within `range`, else an
 * {@link InvalidOptionsError} naming the option, its unit and the range.
 *
 * @example
 * ```ts
 * checkNumber('leaseTtl', 1e17, { unit: 'seconds', min: 0.01, max: 1e9 });
 * // InvalidOptionsError: leaseTtl must be a number of seconds from 0.01 to 1000000000, got 100000000000000000
 * ```
 */
export function checkNumber(name: string, value: unknown, range: NumberRange): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= range.min && value <= range.max && (!range.integer || Number.isInteger(value))) {
    return value;
  }
  const what = range.integer ? 'an integer' : 'a number';
  const unit = range.unit ? ` of ${range.unit}` : '';
  const shown = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value;
  throw new InvalidOptionsError(`${name} must be ${what}${unit} from ${formatNumber(range.min)} to ${formatNumber(range.max)}, got ${shown}`);
}

function formatNumber(n: number): string {
  return Number.isInteger(n) && Math.abs(n) >= 1e4 ? n.toLocaleString('en-US') : String(n);
}

/**
 * The latest absolute expiry the library hands to Redis (Unix milliseconds,
 * 9,999,999,999,999: in the year 2286), which is also the Lua scripts' limit
 * for any lease end or duration in milliseconds (13 digits, exact in Lua's
 * doubles and far from Redis's 64-bit overflow). Checked here so that an
 * option out of range is refused when it is given, not by a script later.
 */
export const MAX_EXPIRY_MS = 9_999_999_999_999;

/**
 * The longest duration, in seconds, that an option given in seconds may
 * take (5 × 10^9 s, about 158 years): now plus it stays below
 * {@link MAX_EXPIRY_MS} until the year 2128.
 */
export const MAX_EXPIRY_SECONDS = 5e9;

/** The checked `durability` option of a connector (see src/redis/durability.ts). */
export interface CheckedDurability {
  replicas: number;
  /** WAIT's timeout, in whole milliseconds (at least 1: WAIT 0 blocks forever). */
  timeoutMs: number;
}

/** Default `durability.timeout`, in seconds. */
export const DEFAULT_DURABILITY_TIMEOUT = 1;

/**
 * Check a connector's `durability: { replicas, timeout }` (timeout in
 * seconds, default 1): WAIT must give up before the command timeout
 * (`commandTimeoutMs`), or the client would time the command out first and
 * the write would look lost.
 *
 * @example
 * ```ts
 * checkDurability({ replicas: 1, timeout: 0.5 }, 10_000); // { replicas: 1, timeoutMs: 500 }
 * ```
 */
export function checkDurability(value: unknown, commandTimeoutMs: number): CheckedDurability {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionsError(`durability must be an object { replicas, timeout }, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  checkOptions('durability', value, ['replicas', 'timeout']);
  const given = value as { replicas?: unknown; timeout?: unknown };
  if (given.replicas === undefined) throw new InvalidOptionsError('durability needs `replicas`: how many replicas must acknowledge each write (1 or more)');
  const replicas = checkNumber('durability.replicas', given.replicas, { min: 1, max: 100, integer: true });
  const maxSeconds = (commandTimeoutMs - 1) / 1000;
  if (typeof given.timeout === 'number' && given.timeout > maxSeconds && given.timeout <= 2 ** 31) {
    throw new InvalidOptionsError(
      `durability.timeout is in seconds and must be shorter than the command timeout (${commandTimeoutMs} ms), got ${given.timeout}` +
        (given.timeout >= 100 ? ` (did you mean ${given.timeout / 1000} s?)` : ''),
    );
  }
  const timeout = given.timeout === undefined ? Math.min(DEFAULT_DURABILITY_TIMEOUT, maxSeconds) : checkNumber('durability.timeout', given.timeout, { unit: 'seconds', min: 0.001, max: maxSeconds });
  return { replicas, timeoutMs: Math.max(1, Math.round(timeout * 1000)) };
}
