/**
 * Simulated workers for the cluster benchmark: `WorkerAgent`s with their own LocalStore and a
 * minimal config, all in one process (the bench itself, or a child running agents-child.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TlsFiles } from '../../src/cluster/certs.js';
import type { Address } from '../../src/cluster/transport.js';
import { WorkerAgent } from '../../src/cluster/worker.js';
import { parseConfig } from '../../src/config/load.js';
import { LocalStore } from '../../src/store/local.js';

export interface AgentsOptions {
  join: Address;
  tls: TlsFiles;
  /** Directory for the config, stores and logs (shared by every simulator process). */
  dir: string;
  /** Agent indices [from, from + count). */
  from: number;
  count: number;
}

/** Creates the agents (stores opened, nothing started yet). */
export async function createAgents(opts: AgentsOptions): Promise<WorkerAgent[]> {
  const root = join(opts.dir, 'root');
  mkdirSync(root, { recursive: true });
  const configFile = join(root, 'dist-build.yml');
  const configText = 'version: 1\ninvocations:\n  noop: { run: "true" }\n';
  writeFileSync(configFile, configText);
  const config = parseConfig(configText, configFile);
  const ids = Array.from({ length: opts.count }, (_, k) => opts.from + k);
  const stores = await Promise.all(
    ids.map((i) => LocalStore.open(join(opts.dir, 'stores', `sim-${i}`))),
  );
  return ids.map(
    (i, k) =>
      new WorkerAgent({
        config,
        join: opts.join,
        listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
        security: { tls: opts.tls },
        store: stores[k]!,
        cacheDir: stores[k]!.dir,
        id: `sim-${i}`,
        logDir: join(opts.dir, 'logs'),
        log: () => {},
      }),
  );
}

/**
 * Starts every agent's Worker service (untimed by the bench: a real worker listens before it
 * joins, as part of starting up); resolves with the time it took (ms).
 */
export async function listenAgents(agents: WorkerAgent[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(agents.map((a) => a.listen()));
  return performance.now() - t0;
}

/**
 * Every agent joins at once (after `listenAgents`); resolves with each one's registration time
 * (ms after the call, sorted) when all have registered.
 */
export async function joinAgents(agents: WorkerAgent[]): Promise<number[]> {
  const t0 = performance.now();
  const times: number[] = [];
  for (const a of agents) a.join();
  await Promise.all(agents.map((a) => a.registered.then(() => times.push(performance.now() - t0))));
  return times.sort((a, b) => a - b);
}

export async function stopAgents(agents: WorkerAgent[]): Promise<void> {
  await Promise.all(agents.map((a) => a.stop('benchmark over').catch(() => undefined)));
}
