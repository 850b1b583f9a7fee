import { jest } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { createCA, issueCert, writeCA, writeCert } from '../../src/cluster/certs.js';
import { captured } from '../helpers/capture.js';
import { VERSION } from '../../src/version.js';

/** Runs the CLI in process and captures what it prints. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { value: code, out, err } = await captured(() => main(args));
  // What a command set (keys --diff: 1) would be the jest process's own exit status.
  process.exitCode = undefined;
  return { code, out, err };
}

let dir: string;
let configFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-cli-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src/a.txt'), 'a');
  writeFileSync(join(dir, 'src/b.txt'), 'b');
  configFile = join(dir, 'dist-build.yml');
  writeFileSync(
    configFile,
    `version: 1
workers: {min: 1, max: 3, max-per-worker: 2}
invocations:
  gen: {run: 'true', inputs: [src/a.txt], outputs: [out/gen], estimate: 30}
  lib: {run: 'true', inputs: [src/b.txt], outputs: [out/lib], needs: [gen], estimate: 10}
  app: {run: 'true', inputs: [src/**], outputs: [out/app], needs: [lib], estimate: 20}
  docs: {run: 'true', outputs: [out/docs], estimate: 5m}
  img:
    docker: {context: src, platforms: [linux/amd64, linux/arm64]}
    needs: [app]
    estimate: 40
`,
  );
  writeFileSync(join(dir, 'history.json'), JSON.stringify({ durations: { docs: 1, gen: 2 } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dist-build CLI', () => {
  it('prints its version and help for every subcommand', async () => {
    expect((await cli('--version')).out.trim()).toBe(VERSION);
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/plan/);
    expect(help.out).toMatch(/validate/);
    for (const sub of ['plan', 'validate']) {
      const r = await cli(sub, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/--config/);
    }
  });

  it("worker --help gives the default id as the worker computes it (every store kind, not 'local')", async () => {
    const r = await cli('worker', '--help');
    expect(r.code).toBe(0);
    expect(r.out.replace(/\s+/g, ' ')).toMatch(/default <host>-command-<stores>/);
    expect(r.out).not.toMatch(/default <host>-command-local\)/);
  });

  it("run --help gives the cache dir the workers use: the config's first local store", async () => {
    const r = await cli('run', '--help');
    expect(r.code).toBe(0);
    expect(r.out.replace(/\s+/g, ' ')).toMatch(
      /--cache-dir <dir> local cache store \(default: the config's first local store, else <config dir>\/.dist-build\/cache\)/,
    );
  });

  it('rejects an unknown command or option with exit code 2', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    const r = await cli('plan', '--bogus');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown option '--bogus'/);
    // A number of local workers no machine wants, before anything is started.
    const many = await cli('run', '--config', configFile, '--workers', '300');
    expect(many.code).toBe(2);
    expect(many.err).toMatch(/--workers 300: at most 256 local worker processes/);
    // --out inside a declared output: what is exported there would go with the next build.
    for (const out of [join(dir, 'out/lib'), join(dir, 'out/lib/dist')]) {
      const inside = await cli('run', '--config', configFile, '--out', out);
      expect(inside.code).toBe(2);
      expect(inside.err).toContain(
        `--out ${out}: inside out/lib, a declared output of lib, which is replaced whenever lib is built or restored`,
      );
    }
    // --cache-dir there too: the cache would go (and be packed into out/lib) whenever lib is built.
    for (const args of [['run'], ['worker', '--join', 'tcp://127.0.0.1:1', '--insecure']]) {
      const cacheDir = join(dir, 'out/lib/cache');
      const inside = await cli(...args, '--config', configFile, '--cache-dir', cacheDir);
      expect(inside.code).toBe(2);
      expect(inside.err).toContain(
        `--cache-dir ${cacheDir}: inside out/lib, a declared output of lib, which is replaced whenever lib is built or restored`,
      );
      expect(existsSync(cacheDir)).toBe(false);
    }
  });

  it('plan --json prints one object with workers, matrix, assignments and estimate', async () => {
    const r = await cli('plan', '--config', configFile, '--json');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.out);
    // 6 units, max-per-worker 2 -> clamp(3, 1, 3) = 3 workers.
    expect(plan.workers).toEqual(['worker-1', 'worker-2', 'worker-3']);
    expect(plan.matrix).toEqual({ include: plan.workers.map((w: string) => ({ worker: w })) });
    expect(Object.keys(plan.assignments).sort()).toEqual(
      ['app', 'docs', 'gen', 'img@linux/amd64', 'img@linux/arm64', 'lib'].sort(),
    );
    for (const w of Object.values(plan.assignments)) expect(plan.workers).toContain(w);
    expect(plan.estimate.makespan).toBeGreaterThanOrEqual(plan.estimate.lowerBound);
    expect(plan.estimate.lowerBound).toBeGreaterThanOrEqual(300);
    expect(plan.units.docs.duration).toBe(300);
    expect(plan.units['img@linux/arm64'].affinityKey).toBe('img@linux/arm64');
    expect(plan.units.gen.cacheKey).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(plan.units.gen.cacheKey).not.toBe(plan.units.lib.cacheKey);
  });

  it('plan honours --workers, --worker-ids, --history, --previous and --no-keys', async () => {
    const four = JSON.parse(
      (await cli('plan', '-c', configFile, '--workers', '4', '--json', '--no-keys')).out,
    );
    expect(four.workers).toHaveLength(4);
    expect(four.units.gen.cacheKey).toBeUndefined();

    const named = JSON.parse(
      (
        await cli(
          'plan',
          '-c',
          configFile,
          '--worker-ids',
          'a,b',
          '--history',
          join(dir, 'history.json'),
          '--json',
        )
      ).out,
    );
    expect(named.workers).toEqual(['a', 'b']);
    expect(named.units.docs.duration).toBe(1);
    expect(named.units.gen.duration).toBe(2);

    const prevFile = join(dir, 'prev.json');
    writeFileSync(prevFile, JSON.stringify(named));
    const again = JSON.parse(
      (
        await cli(
          'plan',
          '-c',
          configFile,
          '--worker-ids',
          'a,b,c',
          '--previous',
          prevFile,
          '--history',
          join(dir, 'history.json'),
          '--json',
        )
      ).out,
    );
    const moved = Object.keys(named.assignments).filter(
      (u) => again.assignments[u] !== named.assignments[u],
    );
    expect(moved.length).toBeLessThanOrEqual(3);
  });

  it('plan prints a readable table by default', async () => {
    const r = await cli('plan', '-c', configFile);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/WORKER\s+LOAD\s+UNITS/);
    expect(r.out).toMatch(/img@linux\/arm64/);
    expect(r.out).toMatch(/estimate: makespan/);
  });

  it("plan leaves run's --out out of the inputs, so its keys are the ones run computes", async () => {
    const root = join(dir, 'out-excluded');
    mkdirSync(join(root, 'dist-build-out'), { recursive: true });
    writeFileSync(join(root, 'a.txt'), 'a');
    const config = join(root, 'dist-build.yml');
    writeFileSync(config, "version: 1\ninvocations:\n  x: {run: 'true', inputs: ['**']}\n");
    const key = async (...flags: string[]) => {
      const r = await cli('plan', '-c', config, '--json', ...flags);
      expect(r.code).toBe(0);
      return (JSON.parse(r.out) as { units: Record<string, { cacheKey: string }> }).units.x!
        .cacheKey;
    };
    const out = ['--out', join(root, 'dist-build-out')];
    const before = await key(...out);
    writeFileSync(join(root, 'dist-build-out', 'dist-build-report.json'), '{}');
    expect(await key(...out)).toBe(before);
    // Another --out: the directory is an input like any other.
    expect(await key('--out', join(dir, 'elsewhere'))).not.toBe(before);
  });

  it('plan reports bad input with exit code 2 and no stack trace', async () => {
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'version: 1\ninvocations:\n  a: {run: x, needs: [b]}\n');
    const r = await cli('plan', '-c', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:3:23: invocations.a.needs[0]: unknown invocation "b"`);
    expect(r.err).not.toMatch(/ at /);
    expect((await cli('plan', '-c', configFile, '--workers', '0')).err).toMatch(
      /--workers: expected a whole number/,
    );
    expect(
      (await cli('plan', '-c', configFile, '--workers', '2', '--worker-ids', 'a')).err,
    ).toMatch(/only one of/);
    // a count no pool has is a usage error, not a RangeError (or minutes of work)
    for (const n of ['99999999999', '10001']) {
      const huge = await cli('plan', '-c', configFile, '--workers', n, '--no-keys');
      expect(huge.code).toBe(2);
      expect(huge.err).toContain(`worker count ${n}: at most 10000 workers can be planned for`);
    }
    expect((await cli('plan', '-c', configFile, '--history', join(dir, 'nope.json'))).err).toMatch(
      /nope\.json: cannot read history: ENOENT/,
    );
    writeFileSync(join(dir, 'h2.json'), '{"durations": {"a": "fast"}}');
    expect((await cli('plan', '-c', configFile, '--history', join(dir, 'h2.json'))).err).toMatch(
      /durations\.a: expected a number of seconds/,
    );
  });

  it('plan warns about input patterns that match no file', async () => {
    const file = join(dir, 'warn.yml');
    writeFileSync(
      file,
      'version: 1\ninvocations:\n  a: {run: x, inputs: [src/a.txt, nothing/**]}\n',
    );
    const r = await cli('plan', '-c', file, '--json');
    expect(r.code).toBe(0);
    expect(r.err).toBe('dist-build: warning: invocations.a: "nothing/**" matches no file\n');
    expect(JSON.parse(r.out).units.a.cacheKey).toMatch(/^sha256:/);
  });

  it('validate says ok or lists the problems', async () => {
    expect((await cli('validate', '-c', configFile)).out).toMatch(/ok \(5 invocations, 6 units\)/);
    expect((await cli('validate', '-c', join(dir, 'missing.yml'))).code).toBe(2);
  });

  it("validate checks the cache stores' options as workers would, and opens nothing", async () => {
    const stores = join(dir, 'stores.yml');
    const write = (storeLines: string) =>
      writeFileSync(
        stores,
        `version: 1\ninvocations:\n  a: {run: 'true'}\ncache:\n  stores:\n${storeLines}`,
      );
    write(
      '    - {type: local, dir: v-cache}\n    - {type: registry, ref: 127.0.0.1:5000/a/b}\n    - {type: gha, retain-days: 3}\n',
    );
    expect((await cli('validate', '-c', stores)).code).toBe(0);
    expect(existsSync(join(dir, 'v-cache'))).toBe(false);
    for (const [line, message] of [
      ['    - {type: registry}\n', /stores\.yml:6:\d+: .*registry store: .*ref/],
      [
        '    - {type: registry, ref: 127.0.0.1:5000/a/b, chunk-size: 1KB}\n',
        /stores\.yml:6:\d+: .*chunk-size/,
      ],
      [
        '    - {type: gha, retainDayz: 3}\n',
        /stores\.yml:6:\d+: .*gha store: unknown option "retainDayz"; expected one of: dir, scope, slots, retain-days/,
      ],
      ['    - {type: local, max-size: lots}\n', /stores\.yml:6:\d+: .*max-size/],
    ] as const) {
      write(line);
      const r = await cli('validate', '-c', stores);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
    }
  });

  it('plan refuses --members without workers or with an empty id', async () => {
    for (const [records, message] of [
      [[], /expected a list of \{"worker_id", "annotations"\} records, got an empty one/],
      [[{ worker_id: 'a' }, { worker_id: '' }], /\[1\]: expected \{"worker_id": "<id>"/],
    ] as const) {
      const members = join(dir, 'members-bad.json');
      writeFileSync(members, JSON.stringify(records));
      const r = await cli('plan', '-c', configFile, '--members', members, '--no-keys');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
    }
  });

  it('plan fails with both sides named when no worker can take a unit', async () => {
    const members = join(dir, 'members.json');
    writeFileSync(
      members,
      JSON.stringify([
        { worker_id: 'x86-1', annotations: { os: 'linux', arch: 'amd64' } },
        { worker_id: 'x86-2', annotations: { os: 'linux', arch: 'amd64' } },
      ]),
    );
    const r = await cli('plan', '-c', configFile, '--members', members, '--no-keys');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/img@linux\/arm64/);
    expect(r.err).toMatch(/x86-1/);
  });
});

describe('cluster clients', () => {
  it.each(['status', 'logs'])(
    '%s with a master that cannot be reached: one line, no stack trace',
    async (cmd) => {
      const sock = join(dir, 'no-master.sock');
      const r = await cli(
        cmd,
        ...(cmd === 'logs' ? ['gen'] : []),
        '--master',
        `unix://${sock}`,
        '--insecure',
      );
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /: cannot reach the master at unix:\S+no-master\.sock: connect ENOENT \S+no-master\.sock\n/,
      );
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    },
    20_000,
  );
});

test('master on a port in use: one line naming the address and why, without grpc-js\'s own "E No address added" line', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as AddressInfo).port;
  const grpcLines: unknown[] = [];
  const spy = jest.spyOn(console, 'error').mockImplementation((m) => void grpcLines.push(m));
  try {
    const r = await cli('master', '--listen', `tcp://127.0.0.1:${port}`, '--insecure', '--serve');
    expect(grpcLines).toEqual([]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `dist-build: cannot listen on tcp://127.0.0.1:${port}: EADDRINUSE: address already in use 127.0.0.1:${port}\n`,
    );
  } finally {
    spy.mockRestore();
    await new Promise((resolve) => busy.close(resolve));
  }
});

test.each(['status', 'logs'])(
  "%s --master at a gRPC server that is no master (a worker's address): said so, exit 2",
  async (cmd) => {
    const server = new grpc.Server();
    const sock = join(dir, `not-a-master-${cmd}.sock`);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    try {
      const r = await cli(cmd, ...(cmd === 'logs' ? ['gen'] : []), '--master', `unix://${sock}`);
      expect(r.code).toBe(2);
      expect(r.err).toBe(
        `dist-build: ${cmd}${cmd === 'logs' ? ' gen' : ''}: unix://${sock}: no dist-build master there (the server has no Master service: the address of a worker's --listen?): The server does not implement the method /dist_build.v1.Master/${cmd === 'logs' ? 'Logs' : 'Status'}\n`,
      );
    } finally {
      server.forceShutdown();
    }
  },
);

describe('certificates of the wrong role', () => {
  let certs: string;
  beforeAll(async () => {
    certs = join(dir, 'certs');
    const ca = await createCA();
    await writeCA(certs, ca);
    for (const [name, role] of [
      ['m', 'master'],
      ['w1', 'worker'],
      ['c', 'client'],
    ] as const)
      await writeCert(certs, name, await issueCert(ca, { name, role }));
  });

  it.each([
    ['master', 'w1', 'worker', 'master'],
    ['worker', 'c', 'client', 'worker'],
    ['logs', 'w1', 'worker', 'client or master'],
  ])(
    '%s with the certificate %s (role %s) is refused before it listens or dials',
    async (cmd, name, role, wanted) => {
      const where =
        cmd === 'master'
          ? ['--listen', 'tcp://127.0.0.1:0', '--config', configFile, '--wait', '0.01']
          : cmd === 'worker'
            ? ['--join', 'tcp://127.0.0.1:1', '--config', configFile]
            : ['gen', '--master', `unix://${join(dir, 'no-master.sock')}`];
      const r = await cli(cmd, ...where, '--certs', certs, '--name', name);
      expect(r.code).toBe(2);
      expect(r.err).toBe(
        `dist-build: ${join(certs, `${name}.pem`)} has role ${role}: \`dist-build ${cmd}\` needs a certificate of role ${wanted} (give --name NAME of one, or issue one with \`dist-build certs issue --name ${wanted.split(' ')[0]} --role ${wanted.split(' ')[0]} --dir ${certs}\`)\n`,
      );
    },
    20_000,
  );
});

describe('master flags', () => {
  it('refuses an invocation the config does not have before it listens, and names with --serve', async () => {
    const r = await cli(
      'master',
      '-l',
      'tcp://127.0.0.1:0',
      '--insecure',
      '-c',
      configFile,
      'nope',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /no unit or invocation "nope" in the config \(there are: gen, lib, app, docs, img@linux\/amd64, img@linux\/arm64\)/,
    );
    expect(r.err).not.toMatch(/listening/);
    const serve = await cli('master', '-l', 'tcp://127.0.0.1:0', '--insecure', '--serve', 'app');
    expect(serve.code).toBe(2);
    expect(serve.err).toMatch(/--serve runs nothing: leave out app/);
  });
});

describe('worker flags', () => {
  /** `dist-build worker` with a master nobody runs: what its flags are refused for. */
  const worker = (...flags: string[]) =>
    cli('worker', '--join', 'tcp://127.0.0.1:1', '--config', configFile, '--insecure', ...flags);

  it('--token-file must be a private, non-empty file', async () => {
    const tok = join(dir, 'token');
    const tokenWorker = () => worker('--token-file', tok);
    const missing = await tokenWorker();
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--token-file .*token: no such file/);
    writeFileSync(tok, 's3cret\n', { mode: 0o644 });
    chmodSync(tok, 0o644);
    const open = await tokenWorker();
    expect(open.code).toBe(2);
    expect(open.err).toMatch(
      /--token-file .*token can be read by every user of this machine \(mode 0644\): make it private with `chmod 600 /,
    );
    writeFileSync(tok, '\n');
    chmodSync(tok, 0o600);
    expect((await tokenWorker()).err).toMatch(/--token-file .*token is empty/);
    // A token is a gRPC metadata value: one line of printable ASCII. Asked by status: a worker
    // given such a token retried forever.
    const status = () =>
      cli('status', '--master', 'tcp://127.0.0.1:1', '--insecure', '--token-file', tok);
    writeFileSync(tok, 'abc\ndef\n');
    const twoLines = await status();
    expect(twoLines.code).toBe(2);
    expect(twoLines.err).toMatch(
      /--token-file .*token: the token has a line break; a token is one line/,
    );
    writeFileSync(tok, 's\u00e9cret\n');
    expect((await status()).err).toMatch(
      /--token-file .*token: the token has "\u00e9" \(U\+00E9\), at character 2; a token is printable ASCII/,
    );
    process.env.DIST_BUILD_TOKEN = 'a\tb';
    try {
      const env = await cli('status', '--master', 'tcp://127.0.0.1:1', '--insecure');
      expect(env.code).toBe(2);
      expect(env.err).toMatch(/DIST_BUILD_TOKEN: the token has "\\t" \(U\+0009\)/);
    } finally {
      delete process.env.DIST_BUILD_TOKEN;
    }
    mkdirSync(join(dir, 'tokdir'));
    const d = await cli(
      'status',
      '--master',
      'tcp://127.0.0.1:1',
      '--insecure',
      '--token-file',
      join(dir, 'tokdir'),
    );
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/--token-file .*tokdir: a directory, not a file/);
  });

  it.each([
    ['os=windows', /"os" is set by the worker itself/],
    ['labels=evil', /"labels" is set by the worker itself \(give labels with --label\)/],
    ['Bad Key=1', /expected a key of lower-case letters/],
    ['=x', /expected key=value/],
  ])('--annotation %s is refused before the worker joins', async (annotation, message) => {
    const r = await worker('--annotation', annotation);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it.each(['', 'gpu,big', 'big gpu'])(
    '--label %j is refused before the worker joins',
    async (label) => {
      const r = await worker('--label', label);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--label .*: expected a label without spaces or commas/);
    },
  );

  it.each(['', ' '])('--id %j is refused before the worker joins', async (id) => {
    const r = await cli(
      'worker',
      '--join',
      'tcp://127.0.0.1:0',
      '--config',
      configFile,
      '--id',
      id,
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--id: expected a worker id, got an empty one/);
  });

  it('--join needs a port a master can listen on', async () => {
    const r = await cli('worker', '--join', 'tcp://127.0.0.1:0', '--config', configFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--join tcp:\/\/127\.0\.0\.1:0: .*port/);
  });
});

describe('the committed bundle', () => {
  it('dist/cli.js runs', () => {
    const out = execFileSync(process.execPath, [join(process.cwd(), 'dist/cli.js'), '--version'], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe(VERSION);
  });
});

describe('keys', () => {
  let tree: string;
  let config: string;
  beforeEach(() => {
    tree = mkdtempSync(join(tmpdir(), 'dist-build-keys-'));
    mkdirSync(join(tree, 'src'));
    writeFileSync(join(tree, 'src/a.txt'), 'a');
    writeFileSync(join(tree, 'src/b.txt'), 'b');
    config = join(tree, 'dist-build.yml');
    writeFileSync(
      config,
      `version: 1
invocations:
  gen: {run: 'true', inputs: [src/a.txt], outputs: [out/gen], env: {MODE: fast}}
  lib: {run: 'true', inputs: ['src/**'], outputs: [out/lib], needs: [gen]}
  docs: {run: 'true', outputs: [out/docs]}
`,
    );
  });
  afterEach(() => rmSync(tree, { recursive: true, force: true }));

  it('prints every unit with its cache key and affinity key, as run and plan compute them', async () => {
    const r = await cli('keys', '-c', config);
    expect(r.code).toBe(0);
    const planned = JSON.parse((await cli('plan', '-c', config, '--json')).out) as {
      units: Record<string, { cacheKey: string }>;
    };
    expect(r.out.split('\n')[0]).toMatch(/^UNIT +CACHE KEY +AFFINITY KEY +FILES +SIZE$/);
    expect(r.out).toMatch(
      new RegExp(`^lib +${planned.units.lib!.cacheKey.slice(0, 19)} +lib +2 +2 B$`, 'm'),
    );
    const json = JSON.parse((await cli('keys', '-c', config, '--json', 'lib')).out) as {
      units: Record<string, { cacheKey: string; key: { inputs: string[][] } }>;
    };
    expect(Object.keys(json.units)).toEqual(['lib']);
    expect(json.units.lib!.cacheKey).toBe(planned.units.lib!.cacheKey);
    expect(json.units.lib!.key.inputs.map((i) => i[0])).toEqual(['src/a.txt', 'src/b.txt']);
    const explained = await cli('keys', '-c', config, '--explain', 'gen');
    expect(explained.out).toMatch(/^gen: cache key sha256:[0-9a-f]{64}$/m);
    expect(explained.out).toMatch(/^ {2}env +MODE=fast$/m);
    expect(explained.out).toMatch(/^ {4}f [0-9a-f]{12} src\/a\.txt$/m);
  });

  it('--diff names the files, env and dependencies that make keys differ, and exits 1', async () => {
    const before = join(tree, 'keys.json');
    writeFileSync(before, (await cli('keys', '-c', config, '--json')).out);
    const same = await cli('keys', '-c', config, '--diff', before);
    expect(same.code).toBe(0);
    expect(same.out).toBe('3 units: 3 with the same cache key, 0 differ\n');
    writeFileSync(join(tree, 'src/a.txt'), 'A');
    writeFileSync(join(tree, 'src/c.txt'), 'c');
    writeFileSync(config, readFileSync(config, 'utf8').replace('MODE: fast', 'MODE: slow'));
    const r = await cli('keys', '-c', config, '--diff', before);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /^gen: cache key sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}\n {2}env MODE: changed\n {2}input changed: src\/a\.txt\nlib: cache key .*\n {2}needs, whose cache keys changed \(see them\): gen\n {2}input changed: src\/a\.txt\n {2}input added: src\/c\.txt\n3 units: 1 with the same cache key, 2 differ\n$/,
    );
  });

  it('--diff warns when the keys file is in the tree, an input of units that match it', async () => {
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace("inputs: ['src/**']", "inputs: ['**']"),
    );
    const saved = join(tree, 'keys.json');
    // As `keys --json > keys.json` does: the shell makes the file (empty) before keys reads the tree.
    writeFileSync(saved, '');
    writeFileSync(saved, (await cli('keys', '-c', config, '--json')).out);
    const r = await cli('keys', '-c', config, '--diff', saved);
    expect(r.out).toMatch(/^lib: .*\n {2}input changed: keys\.json$/m);
    expect(r.err).toMatch(
      /warning: .*keys\.json is an input of lib \(their inputs match it\): it changes their cache keys \(and a run's\); keep keys files out of the tree/,
    );
  });

  it('--diff and --explain print a file name with a line break quoted, on one line', async () => {
    const before = join(tree, 'keys.json');
    writeFileSync(before, (await cli('keys', '-c', config, '--json', 'lib')).out);
    writeFileSync(join(tree, 'src/odd\nname.txt'), 'x');
    const r = await cli('keys', '-c', config, '--diff', before, 'lib');
    expect(r.out).toMatch(/^ {2}input added: "src\/odd\\nname\.txt"$/m);
    const explained = await cli('keys', '-c', config, '--explain', 'lib');
    expect(explained.out).toMatch(/^ {4}f [0-9a-f]{12} "src\/odd\\nname\.txt"$/m);
  });

  it('refuses an unknown unit, a file that is not keys --json, and two modes at once', async () => {
    const unknown = await cli('keys', '-c', config, 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(
      /no unit or invocation "nope" in the config \(there are: gen, lib, docs\)/,
    );
    writeFileSync(join(tree, 'plan.json'), (await cli('plan', '-c', config, '--json')).out);
    const wrong = await cli('keys', '-c', config, '--diff', join(tree, 'plan.json'));
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/expected the output of `dist-build keys --json`/);
    // An edited or truncated keys file: said, not a stack trace.
    const edited = join(tree, 'edited.json');
    writeFileSync(
      edited,
      JSON.stringify({
        format: 'dist-build/keys/v1',
        units: { gen: { cacheKey: 'x', key: { inputs: 'str' } } },
      }),
    );
    const broken = await cli('keys', '-c', config, '--diff', edited, 'gen');
    expect(broken.code).toBe(2);
    expect(broken.err).toMatch(
      /edited\.json: units\.gen: key\.inputs: expected \[path, type, digest\] lists/,
    );
    const both = await cli('keys', '-c', config, '--json', '--explain');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/give only one of --json, --explain and --diff/);
  });
});

describe('plaintextWarning', () => {
  it('warns of --insecure where other machines can reach the server, not on loopback or with TLS', async () => {
    const { plaintextWarning } = await import('../../src/cli/security.js');
    const { parseAddress } = await import('../../src/cluster/transport.js');
    const at = (...a: string[]) => a.map(parseAddress);
    expect(
      plaintextWarning(at('tcp://127.0.0.1:1', 'unix:///tmp/x.sock'), { insecure: true }),
    ).toBeUndefined();
    expect(
      plaintextWarning(at('tcp://0.0.0.0:7000', 'tcp://127.0.0.1:1'), { insecure: true }),
    ).toBe(
      'warning: listening in plaintext (--insecure) on tcp://0.0.0.0:7000, which other machines can reach: anyone who can connect can read what goes over it and, without --token-file, take part; use --certs off loopback',
    );
    expect(plaintextWarning(at('tcp://10.0.0.5:7000'), { insecure: true, token: 't' })).toMatch(
      /can read what goes over it; use --certs off loopback$/,
    );
  });
});
