// Test helpers for the plan/keys tests: Config objects built directly (no loader) and temp trees.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config, DockerSpec, InvocationConfig } from '../../src/config/types.js';
import type { Unit } from '../../src/plan/types.js';

/** An invocation with defaults: `run: true`, no inputs/outputs/needs/env, 600 s timeout. */
export function invocation(
  name: string,
  over: Partial<Omit<InvocationConfig, 'docker'>> & { docker?: Partial<DockerSpec> } = {},
): InvocationConfig {
  const { docker, ...rest } = over;
  const inv: InvocationConfig = {
    name,
    inputs: [],
    outputs: [],
    needs: [],
    export: false,
    env: {},
    labels: [],
    timeout: 600,
    ...rest,
  };
  if (docker) {
    const context = docker.context ?? '.';
    inv.docker = {
      context,
      file: docker.file ?? path.posix.join(context, 'Dockerfile'),
      platforms: docker.platforms ?? [],
      tags: docker.tags ?? [],
      buildArgs: docker.buildArgs ?? {},
      ...(docker.target === undefined ? {} : { target: docker.target }),
    };
  } else if (inv.run === undefined) {
    inv.run = 'true';
  }
  return inv;
}

/** A Config rooted at `root` with the given invocations. */
export function makeConfig(root: string, invocations: InvocationConfig[]): Config {
  return {
    file: path.join(root, 'dist-build.yml'),
    root,
    version: 1,
    workers: { min: 1, max: 4, maxPerWorker: 4 },
    placement: { balance: 1.25, defaultDuration: 60 },
    env: {},
    invocations,
  };
}

/** One unit per invocation (no platform fan-out); `needs` are the invocation names. */
export function simpleUnits(config: Config): Unit[] {
  return config.invocations.map((inv) => ({
    id: inv.name,
    invocation: inv.name,
    ...(inv.platform === undefined ? {} : { platform: inv.platform }),
    affinityKey: inv.name,
    needs: inv.needs,
    labels: inv.labels,
  }));
}

/** Temp directories created by {@link tempDir}, removed by {@link cleanupTempDirs}. */
const created: string[] = [];

export function tempDir(prefix = 'dist-build-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const d of created.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Writes files (`path -> content`; content `null` = directory) below `root`. */
export function writeTree(root: string, files: Record<string, string | Buffer | null>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    if (content === null) {
      fs.mkdirSync(abs, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  }
}

/** Sets mtime/atime of every file below `root` to `seconds` (so racy-entry rules do not apply). */
export function backdate(root: string, seconds = 1_600_000_000): void {
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) fs.utimesSync(p, seconds, seconds);
    }
  };
  walk(root);
}
