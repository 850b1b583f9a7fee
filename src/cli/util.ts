/** Small helpers shared by the cluster commands. */
import { UsageError } from './errors.js';

export function positiveInt(text: string, flag: string): number {
  if (!/^[1-9][0-9]*$/.test(text))
    throw new UsageError(`${flag}: expected a whole number >= 1, got "${text}"`);
  return Number(text);
}

/** Calls `onGone` once when process `pid` no longer exists (checked every 500 ms). */
export function watchParent(pid: number, onGone: () => void): void {
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
        clearInterval(timer);
        onGone();
      }
    }
  }, 500);
  timer.unref();
}
