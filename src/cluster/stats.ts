/** Membership stats (seed 000): `cpu.v0`, `mem.v0`, `disk.v0`, refreshed with every heartbeat. */
import { statfsSync } from 'node:fs';
import os from 'node:os';
import type { Stats } from './protocol.js';

export function collectStats(
  dirs: { name: string; path: string }[],
  running: number,
  slots: number,
): Stats {
  const disk: Stats['disk'] = [];
  for (const d of dirs) {
    try {
      const s = statfsSync(d.path);
      disk.push({
        name: d.name,
        path: d.path,
        free: s.bavail * s.bsize,
        total: s.blocks * s.bsize,
      });
    } catch {
      // a directory that does not exist yet has no stats
    }
  }
  return {
    cpu: { loadavg: os.loadavg(), cpus: os.availableParallelism?.() ?? os.cpus().length },
    mem: { total: os.totalmem(), free: os.freemem() },
    disk,
    running,
    slots,
  };
}

/** The membership record as JSON, in the shape of seed 000 (`stats` as a typed list). */
export function memberRecord(m: {
  worker_id: string;
  connections: { type: string; socket: string }[];
  stats?: Stats | null;
  annotations: Record<string, string>;
}): Record<string, unknown> {
  const stats: Record<string, unknown>[] = [];
  if (m.stats?.cpu) stats.push({ type: 'cpu.v0', ...m.stats.cpu });
  if (m.stats?.mem) stats.push({ type: 'mem.v0', ...m.stats.mem });
  for (const d of m.stats?.disk ?? []) stats.push({ type: 'disk.v0', ...d });
  return {
    worker_id: m.worker_id,
    connections: m.connections,
    stats,
    annotations: m.annotations,
  };
}
