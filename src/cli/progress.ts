/**
 * A progress bar for a terminal, without a dependency: one line, redrawn in
 * place at most 10 times a second, that other lines can be printed above.
 * Only used when stdout is a TTY (and not for --json); elsewhere the
 * {@link silentProgress} does nothing and output stays plain lines.
 *
 * @module
 */
import { count, duration } from './format.js';

/** Reports progress; {@link silentProgress} ignores it all. */
export interface Progress {
  /** Start a stage: a new label, the count back to 0, and its total (unknown: the bar shows counts only). */
  stage(label: string, total?: number): void;
  /** Advance by `n` and set the text after the bar. */
  advance(n: number, status?: string): void;
  /** Print a line above the bar. */
  log(line: string): void;
  /** Remove the bar. */
  done(): void;
}

/** Writes lines to stdout and draws nothing. */
export const silentProgress: Progress = {
  stage() {},
  advance() {},
  log(line) {
    process.stdout.write(`${line}\n`);
  },
  done() {},
};

const CLEAR = '\r\x1b[2K';

/** A bar on `stream` (a TTY). */
export function terminalProgress(stream: NodeJS.WriteStream): Progress {
  let label = '';
  let total: number | undefined;
  let value = 0;
  let status = '';
  let drawn = false;
  let active = false;
  let lastDraw = 0;
  let started = Date.now();

  const render = (): string => {
    const width = Math.max(20, (stream.columns || 80) - 1);
    const tail = status ? ` · ${status}` : '';
    if (total === undefined || total <= 0) return `${label} ${count(value)} keys${tail}`.slice(0, width);
    const fraction = Math.min(1, value / total);
    const elapsed = Date.now() - started;
    const eta = fraction > 0.02 && fraction < 1 ? ` · ETA ${duration((elapsed / fraction) * (1 - fraction))}` : '';
    const numbers = ` ${Math.floor(fraction * 100)}% ${count(Math.min(value, total))}/${count(total)} keys${tail}${eta}`;
    const barWidth = Math.max(10, Math.min(40, width - label.length - numbers.length - 3));
    const filled = Math.round(fraction * barWidth);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${numbers}`.slice(0, width);
  };
  const draw = (force = false) => {
    if (!active) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    stream.write(`${CLEAR}${render()}`);
    drawn = true;
  };
  return {
    stage(l, n) {
      label = l;
      total = n;
      value = 0;
      status = '';
      started = Date.now();
      active = true;
      draw(true);
    },
    advance(n, s) {
      value += n;
      if (s !== undefined) status = s;
      draw();
    },
    log(line) {
      stream.write(`${drawn ? CLEAR : ''}${line}\n`);
      drawn = false;
      draw(true);
    },
    done() {
      if (drawn) stream.write(CLEAR);
      drawn = false;
      active = false;
    },
  };
}
