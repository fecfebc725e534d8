import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgressBar } from '../src/index.js';

function stream(isTTY: boolean) {
  let text = '';
  const s = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        text += chunk;
        cb();
      },
    }),
    { isTTY },
  );
  return { s, text: () => text };
}

describe('createProgressBar', () => {
  it('prints one plain line per 10% step when not a TTY', () => {
    const out = stream(false);
    const bar = createProgressBar({ total: 1000, label: 'prep', stream: out.s });
    for (let done = 0; done <= 1000; done += 50) bar.update(done);
    bar.finish();
    const lines = out.text().trim().split('\n');
    // Deciles 0..10 → 11 lines; finish adds none after 100%.
    expect(lines).toHaveLength(11);
    expect(lines[0]).toMatch(/^prep +0\.0% 0 B\/1000 B/);
    expect(lines[10]).toMatch(/^prep 100\.0% 1000 B\/1000 B/);
    expect(out.text()).not.toContain('\r');
  });

  it('redraws a single line with \\r on a TTY and ends it with a newline', () => {
    const out = stream(true);
    const bar = createProgressBar({ total: 2048, label: 'prep', stream: out.s });
    bar.update(1024); // first draw is immediate
    bar.finish();
    const text = out.text();
    expect(text.startsWith('\r[############------------] prep  50.0% 1.0 KiB/2.0 KiB')).toBe(true);
    expect(text.endsWith('\x1b[K\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(2);
  });
});
