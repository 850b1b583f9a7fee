/**
 * The worker's key check uses the master's declared outputs: a worker whose config differs from
 * the master's in another invocation (one it does not know, or an older version of it) computes
 * the same key for a job whose own definition matches.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { computeCacheKeys } from '../../src/plan/keys.js';
import { expandUnits } from '../../src/plan/units.js';
import { definitionDigest } from '../../src/cluster/definition.js';
import { Master } from '../../src/cluster/master.js';
import { call, protocol } from '../../src/cluster/protocol.js';
import type { StartJobResponse } from '../../src/cluster/protocol.js';
import { channelCredentials, channelOptions, grpcTarget } from '../../src/cluster/transport.js';
import type { Address } from '../../src/cluster/transport.js';
import { WorkerAgent } from '../../src/cluster/worker.js';
import { LocalStore } from '../../src/store/local.js';

const BUILD = `  build:
    run: "true"
    inputs: ["**", "!dist-build.yml"]
`;
const MASTER_CONFIG = `version: 1\ninvocations:\n${BUILD}  docs:\n    run: "true"\n    outputs: [site]\n`;
const WORKER_CONFIG = `version: 1\ninvocations:\n${BUILD}`;

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-keycheck-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

function tree(name: string, config: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'site'), { recursive: true });
  writeFileSync(join(root, 'dist-build.yml'), config);
  writeFileSync(join(root, 'main.c'), 'int main;\n');
  writeFileSync(join(root, 'site/index.html'), 'committed\n'); // in git, under docs' outputs
  return root;
}

test("a worker without the master's other invocations accepts a job whose key the master computed", async () => {
  const sock = (n: string): Address => ({ kind: 'unix', path: join(dir, `${n}.sock`) });
  const mroot = tree('master', MASTER_CONFIG);
  const mconfig = parseConfig(MASTER_CONFIG, join(mroot, 'dist-build.yml'));
  const key = (await computeCacheKeys(mconfig, expandUnits(mconfig))).get('build')!.cacheKey;
  const master = new Master({
    listen: [sock('master')],
    security: {},
    heartbeatMs: 200,
    log: () => {},
  });
  await master.start();
  cleanups.push(() => master.stop());
  const reports: string[] = [];
  master.on('report', (_m, r) => reports.push(`${r.state}: ${r.reason}`));
  const wroot = tree('worker', WORKER_CONFIG);
  const wconfig = parseConfig(WORKER_CONFIG, join(wroot, 'dist-build.yml'));
  const cacheDir = join(dir, 'cache');
  const agent = new WorkerAgent({
    config: wconfig,
    join: sock('master'),
    listen: [sock('w1')],
    security: {},
    store: await LocalStore.open(cacheDir),
    cacheDir,
    id: 'w1',
    logDir: join(dir, 'logs'),
    log: () => {},
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  await agent.registered;
  const client = new (protocol().WorkerClient)(
    grpcTarget(sock('w1')),
    channelCredentials(sock('w1'), {}),
    channelOptions(sock('w1')),
  );
  cleanups.push(() => client.close());
  const res = await call<Parameters<typeof client.StartJob>[0], StartJobResponse>(
    client,
    client.StartJob,
    {
      worker_uuid: master.live()[0]!.uuid,
      job_id: 'j1',
      unit: 'build',
      invocation: 'build',
      definition_digest: definitionDigest(wconfig.invocations[0]!),
      cache_key: key,
      deps: [],
      exclude_inputs: [],
      excluded_outputs: ['site'], // what the master's scheduler sends: declaredOutputs(its config)
    },
    new grpc.Metadata(),
    10_000,
  );
  expect(res.accepted).toBe(true);
  const t0 = Date.now();
  while (reports.length === 0 && Date.now() - t0 < 10_000)
    await new Promise((r) => setTimeout(r, 20));
  // Not 'succeeded: not cached: ...' (the default --key-check warn runs a mismatch uncached).
  expect(reports).toEqual(['succeeded: exited with code 0']);
}, 30_000);
