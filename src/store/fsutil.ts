/** Small file-system helpers shared by the stores: "not there" is an answer, not an error. */
import { readdirSync, readFileSync, writevSync } from 'node:fs';
import { chmod, lstat, readdir, realpath, rm, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';

export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Entry names of `dir`; none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Whether `err` is a permission error (EACCES, EPERM). */
export function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

/** Whether `err` says the file system is full (ENOSPC) or the user's quota is used up (EDQUOT). */
export function isNoSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Where the parent directory of `path` (under `root`) really is, when that is outside `root`: a
 * symlink on the way leads elsewhere, so writing or removing `path` would touch files there.
 * Undefined when it is inside. The nearest existing ancestor is what is resolved.
 */
export async function parentOutside(root: string, path: string): Promise<string | undefined> {
  const realRoot = await realpath(root);
  let existing = dirname(path);
  while (!(await lstat(existing).catch(() => null))) existing = dirname(existing);
  const real = await realpath(existing);
  return real === realRoot || real.startsWith(realRoot + sep) ? undefined : real;
}

/**
 * Removes `path` and everything under it, as `rm -rf` does for its owner: also when it holds
 * read-only directories (a command's output made 0555, as Go's module cache is), whose write bit
 * is added first. Symlinks are never followed.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    // A file in the place of one of its parent directories: nothing is there (as for `rm -rf`).
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    if (!isPermissionError(err)) throw err;
    await addWriteBits(path);
    await rm(path, { recursive: true, force: true });
  }
}

/** Gives the owner rwx on `dir` and every directory under it (a directory's entries need w+x). */
export async function addWriteBits(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  if ((st.mode & 0o700) !== 0o700) await chmod(dir, (st.mode & 0o7777) | 0o700).catch(() => {});
  for (const name of await readdir(dir).catch(() => [])) await addWriteBits(join(dir, name));
}

/** Writes all of `chunks` at the file's position, in as few system calls as it takes. */
export function writevAllSync(fd: number, chunks: readonly Uint8Array[]): void {
  let rest = chunks.filter((c) => c.length > 0);
  while (rest.length > 0) {
    let n = writevSync(fd, rest);
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

/**
 * The entries of `dir` (none when it cannot be read) whose name `ownerOf` reads a process id
 * from, and whose process is gone (never this one's): what dead processes left there (a worker's
 * records, a killed restore's or export's staging directory).
 */
export function leftByDead(
  dir: string,
  ownerOf: (name: string) => number | undefined,
): { name: string; owner: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const left: { name: string; owner: number }[] = [];
  for (const name of names) {
    const owner = ownerOf(name);
    if (owner === undefined || !Number.isInteger(owner) || owner === process.pid) continue;
    if (!processAlive(owner)) left.push({ name, owner });
  }
  return left;
}

/** Whether process `pid` exists on this host (one we may not signal counts: EPERM). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Whether process `pid` is alive and, with `started` (its `processStartTime` when it was
 * recorded), still that process: not a later one that was given the same pid.
 */
export function processStillAlive(pid: number, started?: string): boolean {
  return processAlive(pid) && (started === undefined || processStartTime(pid) === started);
}

/**
 * When process `pid` started (clock ticks since boot: field 22 of `/proc/<pid>/stat`), or
 * undefined when it is not running or there is no `/proc`. A pid and its start time name one
 * process for good: a pid reused later has another start time.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
