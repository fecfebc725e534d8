/** Receives progress of a long operation (bytes done out of total). */
export interface ProgressSink {
  update(done: number): void;
  finish(): void;
}

/** Options of {@link createProgressBar}. */
export interface ProgressBarOptions {
  /** Total units (bytes). */
  total: number;
  /** Text shown before the bar. */
  label?: string;
  /** Where to draw. Default `process.stderr`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * A tiny dependency-free progress bar. On a TTY it redraws one line with `\r` (at most every 100 ms);
 * otherwise (CI, pipes) it prints a plain line at every 10% step so logs stay short.
 *
 * @since 0.1.0
 */
export function createProgressBar(options: ProgressBarOptions): ProgressSink {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const label = options.label ?? 'progress';
  const total = Math.max(0, options.total);
  const started = Date.now();
  let lastDraw = 0;
  let lastDecile = -1;
  let last = 0;
  const line = (done: number) => {
    const frac = total === 0 ? 1 : Math.min(1, done / total);
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? `${human(done / secs)}/s` : '';
    return `${label} ${(frac * 100).toFixed(1).padStart(5)}% ${human(done)}/${human(total)} ${rate}`;
  };
  return {
    update(done) {
      last = done;
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 100) return;
        lastDraw = now;
        const frac = total === 0 ? 1 : Math.min(1, done / total);
        const width = 24;
        const filled = Math.round(frac * width);
        stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${line(done)}\x1b[K`);
      } else {
        const decile = total === 0 ? 10 : Math.floor((Math.min(done, total) / total) * 10);
        if (decile > lastDecile) {
          lastDecile = decile;
          stream.write(`${line(done)}\n`);
        }
      }
    },
    finish() {
      if (tty) stream.write(`\r[${'#'.repeat(24)}] ${line(last)}\x1b[K\n`);
      else if (lastDecile < 10) stream.write(`${line(last)}\n`);
    },
  };
}
