import { jest } from '@jest/globals';

/**
 * Runs `fn` with process.stdout and process.stderr captured (nothing reaches the terminal) and
 * returns its value with what it printed. An error from `fn` is thrown after the streams are
 * restored.
 */
export async function captured<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    return { value: await fn(), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
