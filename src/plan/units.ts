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
