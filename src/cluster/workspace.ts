/**
 * What a worker knows about its work tree: which output paths hold which packed result
 * (`<root>/.dist-build/outputs/<hash of path>` holds the blob digest, and a fingerprint of what
 * the path held then), so a dependency's outputs are restored only when the tree still holds them
 * as they were restored or built, and a lock per output path, so
 * several workers sharing one tree (`dist-build run` on one machine) never restore the same path
 * at the same time. A lock left by a killed process is taken over once its PID is gone.
 */
import crypto from 'node:crypto';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { parentOutside, removeTree } from '../store/fsutil.js';
import { processAlive } from './local.js';

const hashPath = (p: string): string =>
  crypto.createHash('sha256').update(p).digest('hex').slice(0, 32);

/** A declared output that leads out of the tree: the config's (or the tree's) problem, anywhere. */
export class OutputOutsideTreeError extends Error {
  override name = 'OutputOutsideTreeError';
}

export class Workspace {
  private readonly stateDir: string;
  private readonly lockDir: string;

  constructor(readonly root: string) {
    this.stateDir = join(root, '.dist-build', 'outputs');
    this.lockDir = join(root, '.dist-build', 'locks');
  }

  /**
   * Digest of the packed output that `path` holds now, if known and the path is as it was marked:
   * a file changed, added or removed there since (edited by hand, written by another command)
   * makes it unknown, so the output is restored again rather than used as that blob.
   */
  async held(path: string): Promise<string | null> {
    if (!existsSync(join(this.root, path))) return null;
    let marked: string;
    try {
      marked = await readFile(join(this.stateDir, hashPath(path)), 'utf8');
    } catch {
      return null;
    }
    const [digest, print] = marked.trim().split(' ');
    if (!digest || !print) return null;
    return fingerprint(join(this.root, path)) === print ? digest : null;
  }

  async mark(path: string, digest: string): Promise<void> {
    await mkdir(this.stateDir, { recursive: true });
    const file = join(this.stateDir, hashPath(path));
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    const print = fingerprint(join(this.root, path));
    await writeFile(tmp, print ? `${digest} ${print}\n` : '\n');
    await rename(tmp, file);
  }

  async unmark(path: string): Promise<void> {
    await rm(join(this.stateDir, hashPath(path)), { force: true });
  }

  /**
   * Removes a declared output (before the invocation that produces it runs). Refused when its
   * parent directory resolves outside the tree (a symlink on the way): that would remove files
   * elsewhere, as restoring an output (`place` in pack.ts) refuses to write there.
   */
  async clear(path: string): Promise<void> {
    const real = await parentOutside(this.root, join(this.root, path));
    if (real !== undefined) {
      throw new OutputOutsideTreeError(
        `declared output ${path}: its parent directory resolves outside the work tree (to ${real}, through a symlink); not removed`,
      );
    }
    await this.unmark(path);
    // A command may leave read-only directories in its output: cleared all the same.
    await removeTree(join(this.root, path));
  }

  /** Runs `fn` holding the lock of output `path` (exclusive across processes on this tree). */
  async withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    await mkdir(this.lockDir, { recursive: true });
    const lock = join(this.lockDir, hashPath(path));
    let delay = 5;
    for (;;) {
      try {
        await mkdir(lock);
        await writeFile(join(lock, 'pid'), String(process.pid));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await stale(lock)) {
          await rm(lock, { recursive: true, force: true });
          continue;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 200);
      }
    }
    try {
      return await fn();
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

/**
 * What the tree at `abs` looks like: every entry's name, mode, size, inode and modification and
 * change times (an lstat each, nothing read; plain system calls, as packing does), hashed; null
 * when it cannot be walked. A write to a file changes its change time, so any change since is
 * seen (as finely as the file system's timestamps tell writes apart).
 */
function fingerprint(abs: string): string | null {
  const hash = crypto.createHash('sha256');
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p, { bigint: true });
    hash.update(`${rel}\0${st.mode}\0${st.size}\0${st.ino}\0${st.mtimeNs}\0${st.ctimeNs}\0`);
    if (!st.isDirectory()) return;
    for (const name of readdirSync(p).sort()) walk(join(p, name), `${rel}/${name}`);
  };
  try {
    walk(abs, '.');
  } catch {
    return null;
  }
  return hash.digest('hex').slice(0, 32);
}

async function stale(lock: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number(await readFile(join(lock, 'pid'), 'utf8'));
  } catch {
    return false; // being created right now
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return !processAlive(pid);
}
