/**
 * Master and worker agents in this process, talking gRPC with mutual TLS over unix sockets:
 * membership, the worker's refusal of commands it does not know, role and token checks, refused
 * TLS handshakes, and malformed or oversized messages, which must never crash either side.
 */
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { computeCacheKeys } from '../../src/plan/keys.js';
import { expandUnits } from '../../src/plan/units.js';
import { createCA, ephemeralTls, issueCert } from '../../src/cluster/certs.js';
import type { TlsFiles } from '../../src/cluster/certs.js';
import { definitionDigest } from '../../src/cluster/definition.js';
import { Master } from '../../src/cluster/master.js';
import { call, protocol, MAX_MESSAGE_BYTES } from '../../src/cluster/protocol.js';
import type { JobReport, StartJobResponse, StatusResponse } from '../../src/cluster/protocol.js';
import {
  callMetadata,
  channelCredentials,
  channelOptions,
  grpcTarget,
  type Address,
  type Security,
} from '../../src/cluster/transport.js';
import { WorkerAgent, type WorkerOptions } from '../../src/cluster/worker.js';
import { VERSION } from '../../src/version.js';
import { LayeredStore } from '../../src/store/layered.js';
import type { LayeredStats } from '../../src/store/layered.js';
import { LocalStore } from '../../src/store/local.js';
import type { Store } from '../../src/store/types.js';

const T = 30_000;
let dir: string;
let tls: Record<string, TlsFiles>;
const cleanups: (() => Promise<void> | void)[] = [];

const CONFIG = `version: 1
invocations:
  hello:
    run: echo hello > out.txt
    outputs: [out.txt]
`;

/** hello's cache key: it has no inputs, so it is the same in every tree (workers check it). */
let helloKey: string;

beforeAll(async () => {
  ({ tls } = await ephemeralTls(['master', 'client', 'w1', 'w2']));
  const root = mkdtempSync(join(tmpdir(), 'dist-build-cluster-key-'));
  const config = parseConfig(CONFIG, join(root, 'dist-build.yml'));
  helloKey = (await computeCacheKeys(config, expandUnits(config))).get('hello')!.cacheKey;
  rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-cluster-'));
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

function sock(name: string): Address {
  return { kind: 'unix', path: join(dir, `${name}.sock`) };
}

async function startMaster(security: Security, logs: string[] = []): Promise<Master> {
  const m = new Master({
    listen: [sock('master')],
    security,
    heartbeatMs: 200,
    log: (l) => logs.push(l),
  });
  await m.start();
  cleanups.push(() => m.stop());
  return m;
}

async function startWorker(
  name: string,
  security: Security,
  logs: string[] = [],
  start = true,
  extra: Partial<WorkerOptions> = {},
): Promise<WorkerAgent> {
  const root = join(dir, `tree-${name}`);
  mkdirSync(root, { recursive: true });
  const config = parseConfig(CONFIG, join(root, 'dist-build.yml'));
  const cacheDir = join(dir, `cache-${name}`);
  const agent = new WorkerAgent({
    config,
    join: sock('master'),
    listen: [sock(name)],
    security,
    store: await LocalStore.open(cacheDir),
    cacheDir,
    id: name,
    logDir: join(dir, `logs-${name}`),
    log: (l) => logs.push(l),
    ...extra,
  });
  if (start) await agent.start();
  cleanups.push(() => agent.stop());
  return agent;
}

/**
 * A worker without TLS that joins the master over its unix socket and listens where it chooses
 * (its own socket), on `cacheDir`; stopped after the test.
 */
async function startPlainWorker(id: string, cacheDir: string, store?: Store): Promise<WorkerAgent> {
  const root = join(dir, `tree-${id}`);
  mkdirSync(root, { recursive: true });
  const agent = new WorkerAgent({
    config: parseConfig(CONFIG, join(root, 'dist-build.yml')),
    join: sock('master'),
    security: {},
    store: store ?? (await LocalStore.open(cacheDir)),
    cacheDir,
    id,
    log: () => undefined,
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  await agent.registered;
  return agent;
}

function masterClient(security: Security) {
  const a = sock('master');
  const c = new (protocol().MasterClient)(
    grpcTarget(a),
    channelCredentials(a, security),
    channelOptions(a),
  );
  cleanups.push(() => c.close());
  return c;
}

function workerClient(name: string, security: Security) {
  const a = sock(name);
  const c = new (protocol().WorkerClient)(
    grpcTarget(a),
    channelCredentials(a, security),
    channelOptions(a),
  );
  cleanups.push(() => c.close());
  return c;
}

function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

test('a master that stops closes its workers\' heartbeat streams: they do not hear "the master does not know this worker"', async () => {
  const master = await startMaster({});
  const logs: string[] = [];
  const root = join(dir, 'tree-stop');
  mkdirSync(root, { recursive: true });
  const cacheDir = join(dir, 'cache-stop');
  const agent = new WorkerAgent({
    config: parseConfig(CONFIG, join(root, 'dist-build.yml')),
    join: sock('master'),
    listen: [sock('stop')],
    security: {},
    store: await LocalStore.open(cacheDir),
    cacheDir,
    id: 'w-stop',
    log: (l) => logs.push(l),
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  await agent.registered;
  // A few beats, so that one is likely in flight while the master stops.
  await new Promise((r) => setTimeout(r, 500));
  await master.stop();
  await until(
    () => logs.some((l) => /the master closed the heartbeat stream; registering again/.test(l)),
    'the closed stream',
  );
  await new Promise((r) => setTimeout(r, 500));
  expect(logs.join('\n')).not.toMatch(/does not know this worker/);
});

test("a worker told to join another worker's address says there is no master there", async () => {
  const server = new grpc.Server();
  const target = join(dir, 'not-a-master.sock');
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${target}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  cleanups.push(() => void server.forceShutdown());
  const logs: string[] = [];
  const root = join(dir, 'tree-lost');
  mkdirSync(root, { recursive: true });
  const cacheDir = join(dir, 'cache-lost');
  const agent = new WorkerAgent({
    config: parseConfig(CONFIG, join(root, 'dist-build.yml')),
    join: { kind: 'unix', path: target },
    listen: [sock('lost')],
    security: {},
    store: await LocalStore.open(cacheDir),
    cacheDir,
    id: 'lost',
    log: (l) => logs.push(l),
  });
  cleanups.push(() => agent.stop());
  await agent.start();
  await until(() => logs.some((l) => /cannot reach the master/.test(l)), 'the first failure');
  expect(logs.join('\n')).toMatch(
    /cannot reach the master at unix:\S+not-a-master\.sock \(no dist-build master there \(the server has no Master service: the address of a worker's --listen\?\): The server does not implement the method \/dist_build\.v1\.Master\/Register\); retrying/,
  );
});

test('a master whose workers were refused (a wrong token) says so when it gives up waiting for them', async () => {
  const master = await startMaster({ token: 'right' });
  const wlogs: string[] = [];
  await startWorker('w1', { token: 'wrong' }, wlogs);
  await until(() => wlogs.some((l) => /the master refused this worker/.test(l)), 'the refusal');
  // (This agent, unlike `dist-build worker`, asks again after a refusal: counted each time.)
  await expect(master.waitForWorkers(1, 300)).rejects.toThrow(
    /^only 0 of 1 workers registered within 0s \(refused: \d+x Register: wrong token\)$/,
  );
});

test('two workers asking for the same id: the second gets <id>-2, and both sides say so', async () => {
  const mlogs: string[] = [];
  const master = await startMaster({}, mlogs);
  const wlogs: string[][] = [[], []];
  for (const i of [0, 1]) {
    const root = join(dir, `tree-same-${i}`);
    mkdirSync(root, { recursive: true });
    const cacheDir = join(dir, `cache-same-${i}`);
    const agent = new WorkerAgent({
      config: parseConfig(CONFIG, join(root, 'dist-build.yml')),
      join: sock('master'),
      listen: [sock(`same-${i}`)],
      security: {},
      store: await LocalStore.open(cacheDir),
      cacheDir,
      id: 'build-7',
      log: (l) => wlogs[i]!.push(l),
    });
    cleanups.push(() => agent.stop());
    await agent.start();
    await agent.registered;
  }
  expect(master.live().map((m) => m.id)).toEqual(['build-7', 'build-7-2']);
  expect(mlogs).toContainEqual(
    `master: warning: worker id build-7 is taken by the worker at unix://${join(dir, 'same-0.sock')}: the worker from unix://${join(dir, 'same-1.sock')} is build-7-2; give each worker its own --id`,
  );
  expect(mlogs.filter((l) => /warning/.test(l))).toHaveLength(1);
  expect(wlogs[0]!.join('\n')).not.toMatch(/warning/);
  expect(wlogs[1]).toContainEqual(
    'worker build-7-2: warning: another worker of this master has the id build-7: give each worker its own --id',
  );
});

test('a worker joining over a unix socket listens on one of its own by default (no TLS needed), removed when it stops', async () => {
  const master = await startMaster({});
  const cacheDir = join(dir, 'cache-plain');
  // What a killed worker left: its socket record, under a process id that is gone.
  const gone = spawnSync('true').pid!;
  mkdirSync(join(cacheDir, 'running'), { recursive: true });
  const stale = join(cacheDir, 'running', `${gone}.0.sock`);
  writeFileSync(stale, '');
  const agent = await startPlainWorker('plain', cacheDir);
  expect(existsSync(stale)).toBe(false);
  const socket = master.live()[0]!.member.connections[0]!.socket;
  expect(socket.startsWith(`unix://${join(cacheDir, 'running')}/`)).toBe(true);
  expect(socket).toMatch(new RegExp(`/${process.pid}\\.\\d+\\.sock$`));
  const path = socket.slice('unix://'.length);
  expect(existsSync(path)).toBe(true);
  await agent.stop();
  expect(existsSync(path)).toBe(false);
});

test('a long-lived worker writes its cache lookup counters while it runs, not only when it stops', async () => {
  const master = await startMaster({});
  const cacheDir = join(dir, 'cache-stats');
  const statsFile = join(cacheDir, 'stats', 'stats.json');
  const store = new LayeredStore([await LocalStore.open(cacheDir)], { statsFile, slot: 'pool' });
  await startPlainWorker('pool', cacheDir, store);
  const m = master.live()[0]!;
  const ok = await master.startJob(m, {
    worker_uuid: m.uuid,
    job_id: 'j1',
    unit: 'hello',
    invocation: 'hello',
    definition_digest: definitionDigest(
      parseConfig(CONFIG, join(dir, 'x/dist-build.yml')).invocations[0]!,
    ),
    cache_key: helloKey,
    deps: [],
    exclude_inputs: [],
  });
  expect(ok.accepted).toBe(true);
  await until(() => existsSync(statsFile), 'the stats file', 15_000);
  const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as LayeredStats;
  expect(stats).toMatchObject({ slot: 'pool', since: expect.any(String) });
  expect(Date.parse(stats.since!)).toBeLessThanOrEqual(Date.parse(stats.updatedAt));
});

test('a worker logs a refusal the master keeps retrying once in a while, not every time', async () => {
  const master = await startMaster({ tls: tls.master! });
  const logs: string[] = [];
  const w = await startWorker('w1', { tls: tls.w1! }, logs);
  await w.registered;
  const m = master.live()[0]!;
  for (let i = 0; i < 5; i++) {
    const r = await master.startJob(m, {
      worker_uuid: m.uuid,
      job_id: `j${i}`,
      unit: 'nope',
      invocation: 'nope',
      definition_digest: 'sha256:' + '1'.repeat(64),
      cache_key: helloKey,
      deps: [],
      exclude_inputs: [],
    });
    expect(r.accepted).toBe(false);
  }
  expect(logs.filter((l) => /refused job/.test(l))).toEqual([
    expect.stringMatching(
      /refused job j0 \(nope\): invocation "nope" is not in this worker's config/,
    ),
  ]);
});

test('with a cache dir too long for a socket path the socket goes to the temp dir, and stale ones there are removed', async () => {
  const master = await startMaster({});
  const cacheDir = join(dir, 'c'.repeat(120));
  // A socket a killed worker left in the temp dir: its process listened, then died at once.
  const killed = spawnSync(process.execPath, [
    '-e',
    "const p = require('path').join(require('os').tmpdir(), `dist-build-worker-${process.pid}.0.sock`);" +
      "require('net').createServer().listen(p, () => process.kill(process.pid, 'SIGKILL'))",
  ]);
  expect(killed.signal).toBe('SIGKILL');
  const leftover = join(tmpdir(), `dist-build-worker-${killed.pid}.0.sock`);
  expect(lstatSync(leftover).isSocket()).toBe(true);
  // One whose process is not seen here but that answers (a worker in another PID namespace).
  const elsewhere = join(tmpdir(), `dist-build-worker-${spawnSync('true').pid}.1.sock`);
  const live = createServer((c) => c.destroy());
  await new Promise<void>((r) => live.listen(elsewhere, r));
  cleanups.push(() => new Promise<void>((r) => live.close(() => r())));
  const agent = await startPlainWorker('long', cacheDir);
  expect(existsSync(leftover)).toBe(false);
  expect(existsSync(elsewhere)).toBe(true);
  const socket = master.live()[0]!.member.connections[0]!.socket;
  const own = `unix://${join(tmpdir(), `dist-build-worker-${process.pid}.`)}`;
  expect(socket.startsWith(own) && /^[0-9]+\.sock$/.test(socket.slice(own.length))).toBe(true);
  await agent.stop();
  expect(existsSync(socket.slice('unix://'.length))).toBe(false);
});

test(
  'a worker registers with a membership record and heartbeats refresh its stats',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const w = await startWorker('w1', { tls: tls.w1! }, []);
    await w.registered;
    const status = await call<Record<string, never>, StatusResponse>(
      masterClient({ tls: tls.client! }),
      masterClient({ tls: tls.client! }).Status,
      {},
      new grpc.Metadata(),
      T,
    );
    expect(status.members).toHaveLength(1);
    const m = status.members[0]!;
    expect(m.member.worker_id).toBe('w1');
    expect(m.member.connections).toEqual([
      { type: 'grpc.v1', socket: `unix://${join(dir, 'w1.sock')}` },
    ]);
    expect(m.member.annotations).toMatchObject({
      executor: 'command',
      store: 'local',
      version: VERSION,
    });
    expect(m.member.stats?.cpu?.cpus).toBeGreaterThan(0);
    expect(m.member.stats?.disk.map((d) => d.name).sort()).toEqual(['cache', 'work']);
    const first = master.live()[0]!.lastHeartbeatAt;
    await until(() => master.live()[0]!.lastHeartbeatAt > first, 'a heartbeat');
  },
  T,
);

test(
  'a worker of another release is named when it joins',
  async () => {
    const logs: string[] = [];
    const master = await startMaster({ tls: tls.master! }, logs);
    await (
      await startWorker('w1', { tls: tls.w1! })
    ).registered;
    const old = await startWorker('w2', { tls: tls.w2! }, [], true, {
      annotations: { version: '0.0.9' },
    });
    await old.registered;
    expect(
      master
        .live()
        .map((m) => m.id)
        .sort(),
    ).toEqual(['w1', 'w2']);
    expect(logs.filter((l) => /warning/.test(l))).toEqual([
      `master: warning: worker w2 runs dist-build 0.0.9, this master ${VERSION}: where their releases compute cache keys differently, it refuses (or builds without caching) every job; run one release on every machine`,
    ]);
  },
  T,
);

test(
  'a worker listens before it joins: listen() serves without registering, join() registers',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const w = await startWorker('w1', { tls: tls.w1! }, [], false);
    expect(() => w.join()).toThrow(/join\(\) before listen\(\)/);
    await Promise.all([w.listen(), w.listen()]); // one server, however often it is asked
    expect(w.addresses).toEqual([sock('w1')]);
    expect(existsSync(join(dir, 'w1.sock'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(master.live()).toHaveLength(0);
    w.join();
    w.join(); // once
    await w.registered;
    expect(master.live().map((m) => m.id)).toEqual(['w1']);
  },
  T,
);

test(
  'a worker refuses a job whose invocation is unknown or whose definition differs from its config',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const w = await startWorker('w1', { tls: tls.w1! });
    await w.registered;
    const uuid = master.live()[0]!.uuid;
    const client = workerClient('w1', { tls: tls.master! });
    const start = (invocation: string, digest: string) =>
      call<Parameters<typeof client.StartJob>[0], StartJobResponse>(
        client,
        client.StartJob,
        {
          worker_uuid: uuid,
          job_id: `j-${invocation}`,
          unit: invocation,
          invocation,
          definition_digest: digest,
          cache_key: helloKey,
          deps: [],
          exclude_inputs: [],
        },
        new grpc.Metadata(),
        T,
      );
    const unknown = await start('rm-rf', 'sha256:' + '1'.repeat(64));
    expect(unknown.accepted).toBe(false);
    expect(unknown.reason).toMatch(/"rm-rf" is not in this worker's config/);
    const changed = await start('hello', 'sha256:' + '2'.repeat(64));
    expect(changed.accepted).toBe(false);
    expect(changed.reason).toMatch(/differs from this worker's config/);
    const config = parseConfig(CONFIG, join(dir, 'x/dist-build.yml'));
    const ok = await start('hello', definitionDigest(config.invocations[0]!));
    expect(ok.accepted).toBe(true);
  },
  T,
);

test(
  'a worker reads its config file again when it changed: a job of the new version runs, a broken file keeps the old one',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const reports: string[] = [];
    master.on('report', (_m, r) => reports.push(r.job_id));
    const root = join(dir, 'tree-w1');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'dist-build.yml'), CONFIG);
    const logs: string[] = [];
    const w = await startWorker('w1', { tls: tls.w1! }, logs);
    await w.registered;
    const uuid = master.live()[0]!.uuid;
    const client = workerClient('w1', { tls: tls.master! });
    const start = (invocation: string, config: string, n: number) =>
      call<Parameters<typeof client.StartJob>[0], StartJobResponse>(
        client,
        client.StartJob,
        {
          worker_uuid: uuid,
          job_id: `j-${n}`,
          unit: invocation,
          invocation,
          definition_digest: definitionDigest(
            parseConfig(config, join(root, 'dist-build.yml')).invocations.find(
              (i) => i.name === invocation,
            )!,
          ),
          cache_key: helloKey,
          deps: [],
          exclude_inputs: [],
        },
        new grpc.Metadata(),
        T,
      );
    // The checkout moves on: hello changed, greet is new.
    const next = CONFIG.replace('echo hello', 'echo hello again') + '  greet:\n    run: "true"\n';
    expect((await start('hello', next, 1)).reason).toMatch(/differs from this worker's config/);
    writeFileSync(join(root, 'dist-build.yml'), next);
    expect(await start('hello', next, 2)).toEqual({ accepted: true, reason: '' });
    expect(logs).toContainEqual(expect.stringMatching(/dist-build.yml changed: read it again$/));
    await until(() => reports.includes('j-2'), 'the report of j-2');
    // A file that does not load (a checkout half-way): the config read last stays.
    writeFileSync(join(root, 'dist-build.yml'), 'version: 1\ninvocations: [\n');
    const refused = await start('other', CONFIG + '  other:\n    run: "true"\n', 3);
    expect(refused.reason).toMatch(/"other" is not in this worker's config/);
    expect(logs).toContainEqual(
      expect.stringMatching(/dist-build.yml changed and cannot be read now .*keeping the config/),
    );
    expect(await start('greet', next, 4)).toEqual({ accepted: true, reason: '' });
  },
  T,
);

test(
  'only a master certificate may start jobs on a worker; a wrong token is refused',
  async () => {
    const logs: string[] = [];
    const masterLogs: string[] = [];
    await startMaster({ tls: tls.master!, token: 's3cret' }, masterLogs);
    const w = await startWorker('w1', { tls: tls.w1!, token: 's3cret' }, logs);
    await w.registered;
    // Another worker's certificate is from the cluster CA, but its role is not master.
    const asWorker = workerClient('w1', { tls: tls.w2!, token: 's3cret' });
    const err = await call(
      asWorker,
      asWorker.StopJob,
      { worker_uuid: '', job_id: 'x', reason: '' },
      callMetadata({ token: 's3cret' }),
      T,
    ).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((err as grpc.ServiceError).details).toMatch(/role worker, expected master/);

    const wrong = masterClient({ tls: tls.client! });
    const e2 = await call(wrong, wrong.Status, {}, callMetadata({ token: 'guess' }), T).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((e2 as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    // Logged with who sent it (on a unix socket: the certificate), the method named once.
    expect(masterLogs).toContainEqual(
      expect.stringMatching(/^master: refused Status: wrong token \(certificate client\)$/),
    );
    expect(logs).toContainEqual(
      expect.stringMatching(
        /^worker: refused StopJob: certificate w2 has role worker, expected master \(certificate w2\)$/,
      ),
    );
    // A worker with the wrong token never joins, and says why.
    const badLogs: string[] = [];
    const bad = await startWorker('w2', { tls: tls.w2!, token: 'nope' }, badLogs);
    await until(
      () => badLogs.some((l) => /the master refused this worker: Register: wrong token/.test(l)),
      'refusal',
    );
    expect(bad.id).toBe('');
  },
  T,
);

test(
  'workers with a certificate from another CA, without a certificate or with an expired one are refused and logged',
  async () => {
    const logs: string[] = [];
    const master = await startMaster({ tls: tls.master! }, logs);
    const otherCA = await createCA({ name: 'evil CA' });
    const evil = await issueCert(otherCA, { name: 'evil', role: 'worker' });
    const foreign: TlsFiles = { ca: tls.master!.ca, cert: evil.cert, key: evil.key };
    const wlogs: string[] = [];
    await startWorker('w1', { tls: foreign }, wlogs);
    await until(
      () => logs.some((l) => /refused connection from .*not from the cluster CA/.test(l)),
      'CA refusal',
    );

    // Over TCP the refusal names the peer's address and port.
    const tcpMaster = new Master({
      listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
      security: { tls: tls.master! },
      log: (l) => logs.push(l),
    });
    await tcpMaster.start();
    cleanups.push(() => tcpMaster.stop());
    const tcp = tcpMaster.addresses[0]!;
    const foreignClient = new (protocol().MasterClient)(
      grpcTarget(tcp),
      channelCredentials(tcp, { tls: foreign }),
      channelOptions(tcp),
    );
    cleanups.push(() => foreignClient.close());
    await call(foreignClient, foreignClient.Status, {}, new grpc.Metadata(), 5000).catch(
      () => null,
    );
    await until(
      () =>
        logs.some((l) =>
          /refused connection from 127\.0\.0\.1:\d+: client certificate not from the cluster CA/.test(
            l,
          ),
        ),
      'TCP refusal naming the peer',
    );

    // No client certificate at all: plaintext to a TLS server, and TLS without a cert.
    const a = sock('master');
    const noCert = new (protocol().MasterClient)(
      grpcTarget(a),
      grpc.credentials.createSsl(Buffer.from(tls.master!.ca)),
      channelOptions(a),
    );
    cleanups.push(() => noCert.close());
    const e = await call(noCert, noCert.Status, {}, new grpc.Metadata(), 5000).catch(
      (x: grpc.ServiceError) => x,
    );
    expect((e as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    await until(
      () => logs.some((l) => /refused connection from .*no client certificate/.test(l)),
      'no-cert refusal',
    );

    // A plaintext client (a worker started with --insecure) on the TLS port: said as such, not
    // as OpenSSL's record-layer error with its source file and a blank line.
    const plain = new (protocol().MasterClient)(
      grpcTarget(tcp),
      grpc.credentials.createInsecure(),
      channelOptions(tcp),
    );
    cleanups.push(() => plain.close());
    await call(plain, plain.Status, {}, new grpc.Metadata(), 5000).catch(() => null);
    await until(
      () =>
        logs.some((l) =>
          /refused connection from 127\.0\.0\.1:\d+: not TLS: a plaintext client \(started with --insecure\?\)/.test(
            l,
          ),
        ),
      'plaintext refusal',
    );
    expect(logs.join('\n')).not.toMatch(/ssl3_get_record|\n$/);

    // A worker whose CA is another one cannot verify the master: it says so, readably.
    const blindLogs: string[] = [];
    await startWorker('w1', { tls: { ...tls.w1!, ca: otherCA.cert } }, blindLogs);
    await until(
      () =>
        blindLogs.some((l) =>
          /cannot reach the master at .* \(the master's certificate is not from this worker's CA \(--certs: a master set up with another `dist-build certs init`\?\): .*\); retrying/.test(
            l,
          ),
        ),
      "the worker's readable CA problem",
    );
    expect(blindLogs.join('\n')).not.toMatch(/Resolution note/);
    // The master's side of it: the worker hung up, which is not the master refusing anything.
    await until(
      () =>
        logs.some((l) =>
          /refused connection from .*: the client hung up during the TLS handshake \(it did not accept this side's certificate/.test(
            l,
          ),
        ),
      "the master's log of the worker hanging up",
    );
    expect(logs.join('\n')).not.toMatch(/socket hang up/);

    expect(master.live()).toHaveLength(0);
    // The master still serves good workers.
    const good = await startWorker('w2', { tls: tls.w2! });
    await good.registered;
    expect(master.live().map((m) => m.id)).toEqual(['w2']);
  },
  T,
);

test(
  'an expired worker certificate is refused',
  async () => {
    // A cluster CA of its own, to issue a certificate that has already expired.
    const ca = await createCA();
    const m = await issueCert(ca, { name: 'master', role: 'master' });
    const old = await issueCert(ca, {
      name: 'old',
      role: 'worker',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const logs2: string[] = [];
    await startMaster({ tls: { ca: ca.cert, ...m } }, logs2);
    await startWorker('w1', { tls: { ca: ca.cert, ...old } });
    await until(
      () => logs2.some((l) => /refused connection from .*expired/.test(l)),
      'expired refusal',
    );
  },
  T,
);

test(
  'malformed and oversized messages are rejected without crashing either side',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const w = await startWorker('w1', { tls: tls.w1! });
    await w.registered;
    const raw = (target: string, path: string, body: Buffer, security: Security) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const a = sock(target);
        const c = new grpc.Client(grpcTarget(a), channelCredentials(a, security), {
          ...channelOptions(a),
          'grpc.max_send_message_length': -1,
        });
        c.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          (err) => {
            c.close();
            resolve(err);
          },
        );
      });
    // Not protobuf at all.
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34]);
    const e1 = await raw('master', '/dist_build.v1.Master/Register', garbage, { tls: tls.w2! });
    expect(e1?.code).toBe(grpc.status.INTERNAL);
    const e2 = await raw('w1', '/dist_build.v1.Worker/StartJob', garbage, { tls: tls.master! });
    expect(e2?.code).toBe(grpc.status.INTERNAL);
    // Valid protobuf, missing everything.
    const e3 = await raw('master', '/dist_build.v1.Master/Register', Buffer.alloc(0), {
      tls: tls.w2!,
    });
    expect(e3?.code).toBe(grpc.status.INVALID_ARGUMENT);
    // Bigger than the limit on either side.
    const huge = Buffer.alloc(MAX_MESSAGE_BYTES + 1024, 0x0a);
    const e4 = await raw('master', '/dist_build.v1.Master/Heartbeat', huge, { tls: tls.w2! });
    expect(e4?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const e5 = await raw('w1', '/dist_build.v1.Worker/HasCache', huge, { tls: tls.master! });
    expect(e5?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Both still work.
    expect(master.live().map((m) => m.id)).toEqual(['w1']);
    const client = masterClient({ tls: tls.client! });
    const s = await call<Record<string, never>, StatusResponse>(
      client,
      client.Status,
      {},
      new grpc.Metadata(),
      T,
    );
    expect(s.members).toHaveLength(1);
    const wc = workerClient('w1', { tls: tls.master! });
    const has = await call(
      wc,
      wc.HasCache,
      { worker_uuid: '', cache_keys: ['sha256:' + 'a'.repeat(64)] },
      new grpc.Metadata(),
      T,
    );
    expect(has.cache_keys).toEqual([]);
  },
  T,
);

test(
  'jobs start and report on the heartbeat stream; a report sent twice counts once',
  async () => {
    const master = await startMaster({ tls: tls.master! });
    const w = await startWorker('w1', { tls: tls.w1! });
    await w.registered;
    await until(() => master.live()[0]?.stream !== undefined, 'the heartbeat stream');
    const m = master.live()[0]!;
    const reports: { member: string | undefined; job: string; state: string }[] = [];
    master.on('report', (member, r) =>
      reports.push({ member: member?.id, job: r.job_id, state: r.state }),
    );
    const config = parseConfig(CONFIG, join(dir, 'x/dist-build.yml'));
    const job = (id: string, digest: string) => ({
      worker_uuid: m.uuid,
      job_id: id,
      unit: 'hello',
      invocation: 'hello',
      definition_digest: digest,
      cache_key: helloKey,
      deps: [],
      exclude_inputs: [],
    });
    // The same checks as a StartJob call.
    const refused = await master.startJob(m, job('j0', 'sha256:' + '2'.repeat(64)));
    expect(refused.accepted).toBe(false);
    expect(refused.reason).toMatch(/differs from this worker's config/);
    const ok = await master.startJob(m, job('j1', definitionDigest(config.invocations[0]!)));
    expect(ok).toEqual({ accepted: true, reason: '' });
    await until(() => reports.length === 1, 'the report of j1');
    expect(reports).toEqual([{ member: 'w1', job: 'j1', state: 'succeeded' }]);
    expect(m.done).toBe(1);
    // The same report again by ReportResult (as a worker whose ack was lost sends it): dropped.
    const client = masterClient({ tls: tls.w2! });
    const res = await call(
      client,
      client.ReportResult,
      {
        worker_uuid: m.uuid,
        report: {
          job_id: 'j1',
          unit: 'hello',
          state: 'succeeded',
          cache_key: job('', '').cache_key,
        } as JobReport, // proto3 fills in the rest
      },
      new grpc.Metadata(),
      T,
    );
    expect(res.accepted).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(reports).toHaveLength(1);
  },
  T,
);

test(
  "a worker does not take a server with another role's certificate for its master",
  async () => {
    // A cluster certificate, but a worker's: jobs arrive on the master connection, so no.
    const impostor = new Master({
      listen: [sock('master')],
      security: { tls: tls.w2! },
      log: () => {},
    });
    await impostor.start();
    cleanups.push(() => impostor.stop());
    const logs: string[] = [];
    await startWorker('w1', { tls: tls.w1! }, logs);
    await until(
      () => logs.some((l) => /cannot reach the master/.test(l)),
      'the worker to give up on the impostor',
    );
    expect(impostor.live()).toEqual([]);
  },
  T,
);
