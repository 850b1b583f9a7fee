import type { Config, InvocationConfig } from '../config/types.js';
import type { Unit } from './types.js';

/**
 * Expands invocations into placement units: one per invocation, or one per platform for a docker
 * invocation that builds several (`api-image@linux/arm64`), since each platform is a separate
 * build that can run on its own worker. A unit needs every unit of each invocation it needs,
 * except that a platform unit of a multi-platform dependency is matched by platform when the
 * dependency builds the same platform.
 */
export function expandUnits(config: Config): Unit[] {
  const platformsOf = (inv: InvocationConfig): string[] =>
    inv.docker && inv.docker.platforms.length > 1 ? inv.docker.platforms : [];
  const byName = new Map(config.invocations.map((i) => [i.name, i]));
  const unitIds = (inv: InvocationConfig): string[] => {
    const ps = platformsOf(inv);
    return ps.length ? ps.map((p) => `${inv.name}@${p}`) : [inv.name];
  };

  const units: Unit[] = [];
  for (const inv of config.invocations) {
    const fanOut = platformsOf(inv);
    const platforms: (string | undefined)[] = fanOut.length
      ? fanOut
      : [inv.platform ?? inv.docker?.platforms[0]];
    for (const platform of platforms) {
      const needs = inv.needs.flatMap((n) => {
        const dep = byName.get(n)!;
        const depPlatforms = platformsOf(dep);
        if (platform !== undefined && depPlatforms.includes(platform))
          return [`${dep.name}@${platform}`];
        return unitIds(dep);
      });
      const keyed = platform !== undefined ? `${inv.name}@${platform}` : inv.name;
      units.push({
        id: fanOut.length ? keyed : inv.name,
        invocation: inv.name,
        ...(platform === undefined ? {} : { platform }),
        affinityKey: keyed,
        needs,
        labels: inv.labels,
        ...(inv.docker ? { executor: 'docker' } : {}),
      });
    }
  }
  return units;
}

/** Matrix size from the config's workers rule: clamp(ceil(n / max-per-worker), min, max). */
export function workerCount(config: Config, units: number): number {
  const { min, max, maxPerWorker } = config.workers;
  return Math.min(max, Math.max(min, Math.ceil(units / maxPerWorker)));
}

/**
 * The units `names` stand for (a unit id, or an invocation name for all its units), in config
 * order; with `withNeeds`, also every unit they need, directly or not. Throws for a name that is
 * neither, listing the units there are.
 */
export function selectUnits(all: Unit[], names: readonly string[], withNeeds: boolean): Unit[] {
  if (names.length === 0) return all;
  const byId = new Map(all.map((u) => [u.id, u]));
  const wanted = new Set<string>();
  const add = (u: Unit): void => {
    if (wanted.has(u.id)) return;
    wanted.add(u.id);
    if (withNeeds) for (const n of u.needs) add(byId.get(n)!);
  };
  for (const n of names) {
    const hits = all.filter((u) => u.id === n || u.invocation === n);
    if (hits.length === 0) {
      throw new Error(
        `no unit or invocation "${n}" in the config (there are: ${all.map((u) => u.id).join(', ')})`,
      );
    }
    hits.forEach(add);
  }
  return all.filter((u) => wanted.has(u.id));
}

// --- a docker unit's image archive (see src/executors/docker.ts) ----------------------------

/** Where a docker unit's image archive goes, relative to the config's root. */
export const IMAGES_DIR = '.dist-build/images';

/** The unit id as a file name: `api@linux/arm64` -> `api@linux-arm64`. */
export function unitFile(unitId: string): string {
  return unitId.replace(/\//g, '-');
}

/** A docker unit's image archive (relative to the root, posix). */
export function imageArchivePath(unitId: string): string {
  return `${IMAGES_DIR}/${unitFile(unitId)}.tar`;
}

/** Whether an output path is a docker unit's image archive. */
export function isImageArchive(path: string): boolean {
  return path.startsWith(`${IMAGES_DIR}/`) && path.endsWith('.tar');
}

/** Where `--out DIR` puts an image archive: `images/<unit>.tar`. */
export function exportedImagePath(path: string): string {
  return `images/${path.slice(IMAGES_DIR.length + 1)}`;
}

/** A unit's outputs: the declared ones, and for a docker unit its image archive. */
export function unitOutputs(inv: InvocationConfig, unitId: string): string[] {
  return inv.docker ? [...inv.outputs, imageArchivePath(unitId)] : inv.outputs;
}
