/**
 * Text output: durations, tables, and one-line messages.
 *
 * @module
 */

/** `850ms`, `1.3s`, `27s`, `5m 3s`, `2h 4m`, `3d 4h`. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)}ms`;
  if (abs < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (Math.abs(s) < 60) return `${s}s`;
  const m = Math.trunc(s / 60);
  if (Math.abs(m) < 60) return `${m}m ${Math.abs(s % 60)}s`;
  const h = Math.trunc(m / 60);
  if (Math.abs(h) < 24) return `${h}h ${Math.abs(m % 60)}m`;
  return `${Math.trunc(h / 24)}d ${Math.abs(h % 24)}h`;
}

/** Whole seconds as a duration: `0s`, `42s`, `1h 0m`; `?` for unknown. */
export function seconds(s: number | null): string {
  if (s === null) return '?';
  return Math.abs(s) < 60 ? `${Math.round(s)}s` : duration(s * 1000);
}

/** A TTL in milliseconds: `none` for no TTL. */
export function ttl(ms: number | null): string {
  return ms === null ? 'none' : duration(ms);
}

/** `1,234`. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `1 orphan`, `2 orphans`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${count(n)} ${n === 1 ? word : many}`;
}

/** Columns whose cells are right-aligned. */
export interface Column {
  title: string;
  right?: boolean;
}

/** A plain-text table, indented by two spaces, columns separated by two spaces. */
export function table(columns: Column[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    '  ' +
    cells
      .map((cell, i) => (columns[i]?.right ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n');
}

/** One line: control characters and newlines of a message become spaces. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** A value shown in a table cell, without control characters (keys and names come from Redis). */
export function cell(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}
