/**
 * The OCI registry store against a real registry (distribution 2.8, Debian's docker-registry),
 * started per file on 127.0.0.1 and stopped by PID in afterAll.
 */
import { jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createCA, issueCert } from '../../src/cluster/certs.js';
import { digestStream } from '../../src/store/digest.js';
import { LayeredStore } from '../../src/store/layered.js';
import { LocalStore } from '../../src/store/local.js';
import { blobOpenerFor, restoreOutputs, saveOutputs } from '../../src/store/pack.js';
import {
  createRegistryStore,
  OCI_CONFIG_TYPE,
  OUTPUT_LAYER_TYPE,
  RegistryOptionError,
  RegistryStore,
  RESULT_ARTIFACT_TYPE,
  StoreUnavailableError,
} from '../../src/store/registry.js';
import { CorruptBlobError, RESULT_FORMAT } from '../../src/store/types.js';
import type { OutputEntry, ResultManifest, StoreContext } from '../../src/store/types.js';
import {
  registryBinary,
  startRegistry,
  stopAllRegistries,
  type RegistryProcess,
} from '../helpers/registry.js';
import { runCli, stopAll } from '../helpers/processes.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import type { RunReport } from '../../src/report/types.js';

// Real processes and tens of MiB through a registry: generous, never asserted on.
jest.setTimeout(120_000);

const haveRegistry = registryBinary() !== null;
const describeRegistry = haveRegistry ? describe : describe.skip;

let tmp: string;
let repoCounter = 0;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dist-build-registry-test-'));
});

afterAll(async () => {
  await stopAllRegistries();
  await rm(tmp, { recursive: true, force: true });
});

function sha(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The report `dist-build run --out DIR` wrote. */
function runReport(outDir: string): RunReport {
  return JSON.parse(readFileSync(join(outDir, 'dist-build-report.json'), 'utf8')) as RunReport;
}

/** Each invocation's status in the report of a run into `outDir`. */
function statuses(outDir: string): Record<string, string> {
  return Object.fromEntries(runReport(outDir).invocations.map((i) => [i.unit, i.status]));
}

function newRepo(name: string): string {
  return `dist-build/${name}-${++repoCounter}`;
}

interface Harness {
  store: RegistryStore;
  warnings: string[];
  methods: string[];
}

function ctx(warnings: string[], env: NodeJS.ProcessEnv = {}): StoreContext {
  return { root: tmp, slot: 'worker-1', onWarning: (m) => warnings.push(m), env };
}

/** A store on `host/repo`, counting the HTTP methods it sends. */
function makeStore(
  host: string,
  repo: string,
  options: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Harness {
  const warnings: string[] = [];
  const methods: string[] = [];
  const base = createRegistryStore({ ref: `${host}/${repo}`, ...options }, ctx(warnings, env));
  // Same options, recording the methods sent.
  const store = new RegistryStore({
    ref: `${host}/${repo}`,
    chunkSize: options['chunk-size'] !== undefined ? base.chunkSize : undefined,
    concurrency: base.concurrency,
    mountFrom: base.mountFrom,
    env,
    onWarning: (m) => warnings.push(m),
    tempDir: join(tmp, 'pack-tmp'),
    onRequest: (method) => methods.push(method),
  });
  return { store, warnings, methods };
}

function result(cacheKey: string, outputs: OutputEntry[], unit = 'lib'): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey,
    unit,
    invocation: unit,
    exitCode: 0,
    durationMs: 1200,
    worker: 'worker-1',
    createdAt: '2024-05-01T12:00:00.000Z',
    outputs,
  };
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

/** `data` arrived whole in `h`'s repository, sent once (counted once), with no warning. */
async function expectStoredOnce(h: Harness, data: Buffer): Promise<void> {
  expect(h.store.stats().uploadedBytes).toBe(data.length);
  expect(sha(await readAll((await h.store.openBlob(sha(data)))!))).toBe(sha(data));
  expect(h.warnings).toEqual([]);
}

/** A work tree with a directory output and a file output. */
async function makeTree(name: string): Promise<string> {
  const root = join(tmp, name);
  await mkdir(join(root, 'out', 'sub'), { recursive: true });
  await writeFile(join(root, 'out', 'a.txt'), 'hello registry\n');
  await writeFile(join(root, 'out', 'sub', 'b.bin'), randomBytes(300_000));
  await writeFile(join(root, 'single.txt'), `single ${name}\n`);
  return root;
}

const cacheKey = (s: string) => sha(`key ${s} ${Math.random()}`);

// ---------------------------------------------------------------------------------------------

describe('registry store options', () => {
  const warnings: string[] = [];
  const c = ctx(warnings);

  it('validates options with errors naming the option', () => {
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{}, 'ref', /required/],
      [{ ref: 42 }, 'ref', /string/],
      [{ ref: 'ghcr.io' }, 'ref', /host\[:port\]\/repository/],
      [{ ref: 'https://ghcr.io/org/cache' }, 'ref', /scheme/],
      [{ ref: 'ghcr.io/Org/Cache' }, 'ref', /invalid repository/],
      [{ ref: 'ghcr.io/org/cache:latest' }, 'ref', /tag/],
      [{ ref: 'ghcr.io:99999/org/cache' }, 'ref', /port/],
      [{ ref: 'ghcr.io/org/cache', insecure: 'yes' }, 'insecure', /true or false/],
      [{ ref: 'ghcr.io/org/cache', 'chunk-size': 10 }, 'chunk-size', /64 KiB/],
      [{ ref: 'ghcr.io/org/cache', 'chunk-size': 'lots' }, 'chunk-size', /bytes/],
      [{ ref: 'ghcr.io/org/cache', concurrency: 0 }, 'concurrency', /integer/],
      [{ ref: 'ghcr.io/org/cache', concurrency: 2.5 }, 'concurrency', /integer/],
      [{ ref: 'ghcr.io/org/cache', 'mount-from': 'Not Valid' }, 'mount-from', /repository/],
      [{ ref: 'ghcr.io/org/cache', chunksize: 1 }, 'chunksize', /unknown option/],
      [{ ref: 'ghcr.io/org/cache', kind: 'registry' }, 'kind', /unknown option/],
      // As Docker reads it, "myorg/cache" is on Docker Hub: "myorg" is no host.
      [
        { ref: 'myorg/cache' },
        'ref',
        /"myorg", which is not a registry host.*ghcr\.io\/myorg\/cache/,
      ],
      [
        { ref: 'ghcr.io/org/cache', 'mount-from': 'docker.io/org/x' },
        'mount-from',
        /on another registry \(docker\.io\)/,
      ],
    ];
    for (const [options, option, message] of bad) {
      let caught: unknown;
      try {
        createRegistryStore(options, c);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RegistryOptionError);
      expect((caught as RegistryOptionError).option).toBe(option);
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).toContain(option);
    }
  });

  it('takes defaults and sizes with units', () => {
    const s = createRegistryStore(
      {
        ref: 'ghcr.io/org/cache',
        'chunk-size': '8MiB',
        concurrency: 3,
        'mount-from': 'ghcr.io/org/other',
      },
      c,
    );
    expect(s.kind).toBe('registry');
    expect(s.location).toBe('ghcr.io/org/cache');
    expect(s.chunkSize).toBe(8 * 1024 * 1024);
    expect(s.concurrency).toBe(3);
    expect(s.mountFrom).toBe('org/other');
    const d = createRegistryStore({ ref: 'registry.example.com:5000/a/b/c' }, c);
    expect(d.chunkSize).toBe(16 * 1024 * 1024);
    expect(d.concurrency).toBe(8);
    expect(RegistryStore.tagFor(`sha256:${'ab'.repeat(32)}`)).toBe(`r-${'ab'.repeat(32)}`);
  });

  it('says so when a registry told to speak https answers in plain http', async () => {
    const plain = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const { port } = plain.address() as AddressInfo;
    try {
      const warnings: string[] = [];
      const s = new RegistryStore({
        ref: `127.0.0.1:${port}/a/b`,
        insecure: false,
        onWarning: (m) => warnings.push(m),
      });
      expect(await s.hasResults([cacheKey('tls')])).toEqual(new Set());
      expect(warnings).toEqual([
        expect.stringMatching(
          /unreachable \(HEAD result .*: the server does not speak TLS \(a plain-http registry needs insecure: true\)\); cache misses$/,
        ),
      ]);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  it('speaks https except to loopback hosts, unless told otherwise', async () => {
    const urls: string[] = [];
    const fake: typeof fetch = async (input) => {
      urls.push(String(input));
      return new Response(null, { status: 404 });
    };
    const d = `sha256:${'0'.repeat(64)}`;
    for (const [ref, insecure] of [
      ['ghcr.io/org/cache', undefined],
      ['127.0.0.1:5000/a/b', undefined],
      ['localhost:5000/a/b', undefined],
      ['localhost:5000/a/b', false],
      ['10.0.0.1:5000/a/b', true],
      ['docker.io/org/cache', undefined],
    ] as const) {
      const s = new RegistryStore({ ref, insecure, fetch: fake });
      expect(await s.hasBlobs([d])).toEqual(new Set());
    }
    expect(urls).toEqual([
      `https://ghcr.io/v2/org/cache/blobs/${d}`,
      `http://127.0.0.1:5000/v2/a/b/blobs/${d}`,
      `http://localhost:5000/v2/a/b/blobs/${d}`,
      `https://localhost:5000/v2/a/b/blobs/${d}`,
      `http://10.0.0.1:5000/v2/a/b/blobs/${d}`,
      `https://registry-1.docker.io/v2/org/cache/blobs/${d}`,
    ]);
  });
});

describe('registry store listing (fake registry)', () => {
  it('follows Link pagination of the tags list and keeps only result tags', async () => {
    const keys = [sha('k1'), sha('k2'), sha('k3')];
    const tag = (k: string) => RegistryStore.tagFor(k);
    const pages: Record<string, { tags: string[]; next?: string }> = {
      '/v2/org/cache/tags/list?n=1000': {
        tags: [tag(keys[0]!), 'latest'],
        next: '/v2/org/cache/tags/list?n=1000&last=b',
      },
      '/v2/org/cache/tags/list?n=1000&last=b': { tags: [tag(keys[1]!), tag(keys[2]!), 'r-short'] },
    };
    const seen: string[] = [];
    const fake: typeof fetch = async (input) => {
      const url = new URL(String(input));
      const path = url.pathname + url.search;
      seen.push(path);
      const page = pages[path];
      if (page) {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (page.next) headers.link = `<${page.next}>; rel="next"`;
        return new Response(JSON.stringify({ name: 'org/cache', tags: page.tags }), { headers });
      }
      const m = /\/manifests\/r-([0-9a-f]{64})$/.exec(url.pathname);
      if (m) {
        const doc = {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: RESULT_ARTIFACT_TYPE,
          config: { mediaType: RESULT_ARTIFACT_TYPE, digest: sha('config'), size: 10 },
          layers: [
            { mediaType: OUTPUT_LAYER_TYPE, digest: sha('a'), size: 100 },
            { mediaType: OUTPUT_LAYER_TYPE, digest: sha('b'), size: 23 },
          ],
          annotations: {
            'org.opencontainers.image.created': '2024-01-02T03:04:05Z',
            'dev.dist-build.unit': `unit-${m[1]!.slice(0, 4)}`,
          },
        };
        return new Response(JSON.stringify(doc));
      }
      return new Response(null, { status: 404 });
    };
    const s = new RegistryStore({ ref: 'registry.example.com/org/cache', fetch: fake });
    const listed = [];
    for await (const l of s.listResults()) listed.push(l);
    expect(listed).toEqual(
      keys.map((k) => ({
        cacheKey: k,
        unit: `unit-${k.slice(7, 11)}`,
        size: 123,
        createdAt: '2024-01-02T03:04:05Z',
      })),
    );
    expect(seen.filter((p) => p.includes('tags/list'))).toHaveLength(2);
  });

  it('answers basic auth once for concurrent first requests, and says when it is refused', async () => {
    const keys = [sha('b1'), sha('b2'), sha('b3'), sha('b4')];
    const good = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const unauthorized = new Set<string>();
    // As registry:2 with htpasswd: every request without the right credentials gets 401.
    const fake: typeof fetch = async (input, init) => {
      const auth = new Headers(init?.headers).get('authorization');
      if (auth !== good) {
        unauthorized.add(String(input));
        return new Response(null, {
          status: 401,
          headers: { 'www-authenticate': 'Basic realm="basic-realm"' },
        });
      }
      const tag = /\/manifests\/r-([0-9a-f]{64})$/.exec(new URL(String(input)).pathname);
      return new Response(null, { status: tag && tag[1] === keys[0]!.slice(7) ? 200 : 404 });
    };
    const env = { DIST_BUILD_REGISTRY_USERNAME: 'alice', DIST_BUILD_REGISTRY_PASSWORD: 's3cret' };
    const warnings: string[] = [];
    const s = new RegistryStore({
      ref: 'registry.example.com/org/cache',
      fetch: fake,
      env,
      onWarning: (m) => warnings.push(m),
    });
    // Four HEADs go out at once and all meet the 401 before any has been answered.
    expect(await s.hasResults(keys)).toEqual(new Set([keys[0]]));
    expect(unauthorized.size).toBe(4);
    expect(warnings).toEqual([]);

    const wrong = new RegistryStore({
      ref: 'registry.example.com/org/cache',
      fetch: fake,
      env: { ...env, DIST_BUILD_REGISTRY_PASSWORD: 'wrong' },
      onWarning: (m) => warnings.push(m),
    });
    expect(await wrong.hasResults(keys)).toEqual(new Set());
    expect(warnings).toEqual([
      expect.stringMatching(
        /refused the credentials from DIST_BUILD_REGISTRY_USERNAME\/PASSWORD; cache misses$/,
      ),
    ]);
  });
});

describeRegistry('registry store on a real registry', () => {
  let reg: RegistryProcess;

  beforeAll(async () => {
    reg = await startRegistry();
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('round-trips outputs and results; a second save uploads no blob bytes', async () => {
    const repo = newRepo('roundtrip');
    const root = await makeTree('rt');
    const a = makeStore(reg.host, repo);
    const entries = await saveOutputs(a.store, root, ['out', 'single.txt']);
    const key = cacheKey('rt');
    await a.store.putResult(result(key, entries));
    expect(a.store.stats().uploadedBytes).toBeGreaterThan(300_000);

    // Another worker: reads it back and restores it.
    const b = makeStore(reg.host, repo);
    const got = await b.store.getResult(key);
    expect(got).toEqual(result(key, entries));
    const dest = join(tmp, 'rt-restored');
    await restoreOutputs(blobOpenerFor(b.store), dest, got!.outputs);
    expect(await readFile(join(dest, 'out', 'a.txt'), 'utf8')).toBe('hello registry\n');
    expect(sha(await readFile(join(dest, 'out', 'sub', 'b.bin')))).toBe(
      sha(await readFile(join(root, 'out', 'sub', 'b.bin'))),
    );
    expect(await readFile(join(dest, 'single.txt'), 'utf8')).toBe('single rt\n');

    // Saving the same tree again: every blob is already there.
    const c = makeStore(reg.host, repo);
    const again = await saveOutputs(c.store, root, ['out', 'single.txt']);
    expect(again).toEqual(entries);
    await c.store.putResult(result(key, again));
    expect(c.store.stats().uploadedBytes).toBe(0);
    expect(c.methods.filter((m) => m === 'PATCH')).toEqual([]);

    expect(await b.store.hasResults([key, cacheKey('none')])).toEqual(new Set([key]));
    expect(await b.store.getResult(cacheKey('none'))).toBeNull();
    expect(await b.store.openBlob(sha('never stored'))).toBeNull();

    // The manifest is an artifact manifest with our types, tagged by the cache key.
    const res = await fetch(`${reg.url}/v2/${repo}/manifests/${RegistryStore.tagFor(key)}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const doc = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(doc.artifactType).toBe(RESULT_ARTIFACT_TYPE);
    expect(doc.config.mediaType).toBe(RESULT_ARTIFACT_TYPE);
    expect(doc.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      OUTPUT_LAYER_TYPE,
      OUTPUT_LAYER_TYPE,
    ]);
    expect(doc.layers[0].annotations['org.opencontainers.image.title']).toBe('out');

    const listed = [];
    for await (const l of b.store.listResults()) listed.push(l);
    const size = entries.reduce((n, e) => n + e.size, 0);
    expect(listed).toEqual([
      { cacheKey: key, unit: 'lib', size, createdAt: '2024-05-01T12:00:00.000Z' },
    ]);
    const some = [];
    for await (const l of b.store.listResults(key.slice(0, 12))) some.push(l.cacheKey);
    expect(some).toEqual([key]);
    const none = [];
    for await (const l of b.store.listResults(key[7] === '0' ? '1' : '0')) none.push(l);
    expect(none).toEqual([]);
    expect([...a.warnings, ...b.warnings, ...c.warnings]).toEqual([]);
  });

  it('stores results without outputs, and refuses results naming blobs it lacks', async () => {
    const repo = newRepo('empty');
    const s = makeStore(reg.host, repo);
    const key = cacheKey('empty');
    await s.store.putResult(result(key, []));
    expect(await s.store.getResult(key)).toEqual(result(key, []));
    const missing: OutputEntry = {
      path: 'x',
      type: 'file',
      digest: sha('nope'),
      size: 4,
      files: 1,
    };
    await expect(s.store.putResult(result(cacheKey('m'), [missing]))).rejects.toThrow(/not stored/);
    expect(s.warnings).toEqual([]);
  });

  it('checks the digest of what it stores', async () => {
    const s = makeStore(reg.host, newRepo('digest'));
    const data = Buffer.from('some bytes');
    const wrong = sha('other bytes');
    await expect(s.store.putBlob(Readable.from([data]), wrong)).rejects.toBeInstanceOf(
      CorruptBlobError,
    );
    expect(await s.store.hasBlobs([wrong, sha(data)])).toEqual(new Set());
    expect(await s.store.putBlob(Readable.from([data]))).toEqual({
      digest: sha(data),
      size: data.length,
    });
    expect(await s.store.putBlob(Readable.from([Buffer.alloc(0)]))).toEqual({
      digest: sha(''),
      size: 0,
    });
    expect(await readAll((await s.store.openBlob(sha('')))!)).toEqual(Buffer.alloc(0));
  });

  it('uploads a large blob in chunks, from a stream and from a file', async () => {
    const big = randomBytes(40 * 1024 * 1024 + 12345);
    const digest = sha(big);
    const s = makeStore(reg.host, newRepo('large'));
    async function* slices(): AsyncGenerator<Buffer> {
      for (let i = 0; i < big.length; i += 1024 * 1024) yield big.subarray(i, i + 1024 * 1024);
    }
    expect(await s.store.putBlob(slices())).toEqual({ digest, size: big.length });
    expect(s.methods.filter((m) => m === 'PATCH')).toHaveLength(3);
    expect(s.store.stats().uploadedBytes).toBe(big.length);
    const back = await digestStream((await s.store.openBlob(digest))!);
    expect(back).toEqual({ digest, size: big.length });

    const file = join(tmp, 'big.bin');
    await writeFile(file, big);
    const f = makeStore(reg.host, newRepo('large-file'), { 'chunk-size': '8MiB' });
    expect(await f.store.putBlobFile(file)).toEqual({ digest, size: big.length });
    expect(f.methods.filter((m) => m === 'PATCH')).toHaveLength(6);
    expect(f.store.stats().uploadedBytes).toBe(big.length);
    expect(await f.store.hasBlobs([digest])).toEqual(new Set([digest]));
    // Already there: hashed, not uploaded.
    expect(await f.store.putBlobFile(file)).toEqual({ digest, size: big.length });
    expect(f.store.stats().uploadedBytes).toBe(big.length);
    await rm(file);
  });

  it('uploads packed files with their known digest (adoptBlobFile): one PUT or chunks', async () => {
    const s = makeStore(reg.host, newRepo('adopt'), { 'chunk-size': '8MiB' });
    const big = randomBytes(20 * 1024 * 1024 + 7);
    const file = join(tmp, 'adopt.bin');
    await writeFile(file, big);
    expect(await s.store.adoptBlobFile(file, sha(big))).toEqual({
      digest: sha(big),
      size: big.length,
    });
    expect(s.methods).toEqual(['HEAD', 'POST', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
    expect(s.store.stats().uploadedBytes).toBe(big.length);
    expect(sha(await readAll((await s.store.openBlob(sha(big)))!))).toBe(sha(big));
    s.methods.length = 0;
    // Already there: not uploaded again.
    await s.store.adoptBlobFile(file, sha(big));
    expect(s.methods).toEqual(['HEAD']);

    const small = randomBytes(100_000);
    await writeFile(file, small);
    s.methods.length = 0;
    expect(await s.store.adoptBlobFile(file, sha(small))).toEqual({
      digest: sha(small),
      size: small.length,
    });
    expect(s.methods).toEqual(['HEAD', 'POST', 'PUT']);
    // The registry checks the digest: a file that does not hash to it is not stored.
    for (const data of [small, big]) {
      await writeFile(file, data);
      const wrong = sha(`not ${data.length}`);
      await expect(s.store.adoptBlobFile(file, wrong)).rejects.toBeInstanceOf(CorruptBlobError);
      expect(await s.store.hasBlobs([wrong])).toEqual(new Set());
    }
    await rm(file);

    // saveOutputs packs into the store's temp dir and removes what it packed.
    const root = await makeTree('adopt');
    const entries = await saveOutputs(s.store, root, ['out']);
    expect(await s.store.hasBlobs([entries[0]!.digest])).toEqual(new Set([entries[0]!.digest]));
    expect(await readdir(join(tmp, 'pack-tmp'))).toEqual([]);
  });

  it('takes the files packed for a local store before it with their digests (no second hash)', async () => {
    const s = makeStore(reg.host, newRepo('layered'));
    const local = await LocalStore.open(join(tmp, 'layered-local'));
    const adopt = jest.spyOn(s.store, 'adoptBlobFile');
    const put = jest.spyOn(s.store, 'putBlobFile');
    const root = await makeTree('layered');
    const entries = await saveOutputs(new LayeredStore([local, s.store]), root, [
      'out',
      'single.txt',
    ]);
    const digests = entries.map((e) => e.digest);
    expect(adopt.mock.calls.map((c) => c[1])).toEqual(digests);
    expect(put).not.toHaveBeenCalled();
    expect(await s.store.hasBlobs(digests)).toEqual(new Set(digests));
    expect(await local.hasBlobs(digests)).toEqual(new Set(digests));
  });

  it('ends a download cut short with an error, not as corrupt: nothing deleted, nothing restored', async () => {
    const repo = newRepo('cut');
    const root = join(tmp, 'cut-src');
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out', 'big.bin'), randomBytes(3 * 1024 * 1024));
    const a = makeStore(reg.host, repo);
    const entries = await saveOutputs(a.store, root, ['out']);
    const digest = entries[0]!.digest;
    const proxy = await startShortBlobProxy(reg.host, 'cut');
    try {
      const b = makeStore(proxy.host, repo);
      const err = await readAll((await b.store.openBlob(digest))!).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as StoreUnavailableError).kind).toBe('network');
      expect((err as Error).message).toMatch(/connection was lost after \d+ of \d+ bytes/);
      const dest = join(tmp, 'cut-dest');
      await expect(restoreOutputs(blobOpenerFor(b.store), dest, entries)).rejects.toThrow();
      expect(await stat(join(dest, 'out')).catch(() => null)).toBeNull();
      expect(proxy.cut).toBe(2);
      // Not taken for corrupt: no warning, not deleted, still read from this store.
      expect(b.warnings).toEqual([]);
      expect(await b.store.hasBlobs([digest])).toEqual(new Set([digest]));
      expect(sha(await readAll((await a.store.openBlob(digest))!))).toBe(digest);
    } finally {
      await proxy.stop();
    }
  });

  it('takes a result config whose download is cut short for a miss, not for corrupt: nothing deleted', async () => {
    const repo = newRepo('cut-config');
    const a = makeStore(reg.host, repo);
    const entries = await saveOutputs(a.store, await makeTree('cut-config'), ['out']);
    const key = cacheKey('cut-config');
    await a.store.putResult(result(key, entries));
    let cut = 0;
    // The first blob read (the result's config) loses its connection after a few bytes.
    const proxy = await startProxy(reg.host, (req, res, forward) => {
      if (req.method !== 'GET' || !req.url?.includes('/blobs/sha256:') || cut > 0) return false;
      cut++;
      forward(undefined, (up) => {
        res.writeHead(up.statusCode ?? 502, { ...up.headers });
        up.once('data', (chunk: Buffer) => {
          up.destroy();
          res.write(chunk.subarray(0, 10), () => setTimeout(() => res.destroy(), 20));
        });
      });
      return true;
    });
    try {
      const b = makeStore(proxy.host, repo);
      expect(await b.store.getResult(key)).toBeNull();
      expect(cut).toBe(1);
      expect(b.warnings).toEqual([
        expect.stringMatching(/connection was lost after 10 of \d+ bytes/),
      ]);
      // Still in the repository, and read by the same store once the connection holds.
      expect(await b.store.getResult(key)).toEqual(result(key, entries));
      expect(await a.store.getResult(key)).toEqual(result(key, entries));
    } finally {
      await proxy.stop();
    }
  });

  it('sends a large file in one PUT, or in chunks once the registry refuses that (413)', async () => {
    const data = randomBytes(20 * 1024 * 1024 + 3);
    const file = join(tmp, 'whole.bin');
    await writeFile(file, data);
    const s = makeStore(reg.host, newRepo('whole'));
    expect(await s.store.putBlobFile(file)).toEqual({ digest: sha(data), size: data.length });
    expect(s.methods).toEqual(['HEAD', 'POST', 'PUT']);

    let refused = 0;
    const proxy = await startProxy(reg.host, (req, res) => {
      if (Number(req.headers['content-length'] ?? 0) <= 16 * 1024 * 1024) return false;
      refused++;
      res.writeHead(413, { 'content-type': 'text/plain' });
      res.end('request entity too large');
      return true;
    });
    try {
      const t = makeStore(proxy.host, newRepo('whole-413'));
      expect(await t.store.putBlobFile(file)).toEqual({ digest: sha(data), size: data.length });
      expect(t.methods).toEqual(['HEAD', 'POST', 'PUT', 'DELETE', 'POST', 'PATCH', 'PATCH', 'PUT']);
      expect(t.store.stats().uploadedBytes).toBe(data.length);
      expect(sha(await readAll((await t.store.openBlob(sha(data)))!))).toBe(sha(data));
      // Remembered: chunks straight away.
      const other = Buffer.concat([data, Buffer.from('x')]);
      await writeFile(file, other);
      t.methods.length = 0;
      expect(await t.store.putBlobFile(file)).toEqual({ digest: sha(other), size: other.length });
      expect(t.methods).toEqual(['HEAD', 'POST', 'PATCH', 'PATCH', 'PUT']);
      expect(refused).toBe(1);
      expect(t.warnings).toEqual([]);
    } finally {
      await proxy.stop();
      await rm(file);
    }
  });

  it('times out a download that stalls, not one whose reader pauses', async () => {
    const repo = newRepo('stall');
    const data = randomBytes(3 * 1024 * 1024);
    const a = makeStore(reg.host, repo);
    const { digest } = await a.store.putBlob(Readable.from([data]));
    const proxy = await startShortBlobProxy(reg.host, 'stall');
    try {
      const warnings: string[] = [];
      const s = new RegistryStore({
        ref: `${proxy.host}/${repo}`,
        timeoutMs: 300,
        onWarning: (m) => warnings.push(m),
      });
      const err = await readAll((await s.openBlob(digest))!).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/lost after \d+ of \d+ bytes \(no data for 0.3 s\)/);
      expect(warnings).toEqual([]);
    } finally {
      await proxy.stop();
    }
    // Straight from the registry, read with pauses longer than the timeout: all there.
    const slow = new RegistryStore({ ref: `${reg.host}/${repo}`, timeoutMs: 100 });
    const hash = createHash('sha256');
    let chunks = 0;
    for await (const chunk of (await slow.openBlob(digest))!) {
      hash.update(chunk as Buffer);
      if (chunks++ % 16 === 0) await new Promise((r) => setTimeout(r, 250));
    }
    expect(chunks).toBeGreaterThan(16);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
  });

  it('waits for the answer to a large upload far longer than to a small request', async () => {
    const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // A registry slow to answer once it has the body (storing a large blob on S3 is a copy).
    const proxy = await startProxy(reg.host, (req, _res, forward) => {
      if (req.method !== 'PUT' && req.method !== 'GET') return false;
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => void delay(600).then(() => forward(Buffer.concat(parts))));
      return true;
    });
    try {
      const warnings: string[] = [];
      const s = new RegistryStore({
        ref: `${proxy.host}/${newRepo('slow')}`,
        timeoutMs: 200,
        onWarning: (m) => warnings.push(m),
      });
      const data = randomBytes(2 * 1024 * 1024);
      const file = join(tmp, 'slow.bin');
      await writeFile(file, data);
      expect(await s.putBlobFile(file)).toEqual({ digest: sha(data), size: data.length });
      await rm(file);
      expect(warnings).toEqual([]);
      expect(await s.openBlob(sha(data))).toBeNull(); // the GET timed out: a miss
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/unreachable \(GET blob .*: timed out\)/);
    } finally {
      await proxy.stop();
    }
  });

  it('gives up on a registry that took a large upload and never answers', async () => {
    let swallowed = 0;
    const proxy = await startProxy(reg.host, (req) => {
      if (req.method !== 'PUT') return false;
      req.on('data', (c: Buffer) => (swallowed += c.length)); // read, never answered
      return true;
    });
    try {
      const warnings: string[] = [];
      // 100 ms without progress: the answer to a 2 MiB body gets 5 x 100 ms + 2.1 s.
      const s = new RegistryStore({
        ref: `${proxy.host}/${newRepo('swallow')}`,
        timeoutMs: 100,
        onWarning: (m) => warnings.push(m),
      });
      const data = randomBytes(2 * 1024 * 1024);
      const file = join(tmp, 'swallowed.bin');
      await writeFile(file, data);
      const started = Date.now();
      const err = await s.putBlobFile(file).then(
        () => null,
        (e: unknown) => e,
      );
      await rm(file);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/timed out/);
      expect(swallowed).toBe(data.length);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    } finally {
      await proxy.stop();
    }
  });

  it('sends a request again, body and all, when a kept-alive connection turns out closed', async () => {
    const served = new WeakMap<object, number>();
    let dropped = 0;
    // Drops the connection of the first upload that comes on a connection used before (as a
    // server does that closes idle connections just as the next request arrives).
    const proxy = await startProxy(reg.host, (req) => {
      const n = served.get(req.socket) ?? 0;
      served.set(req.socket, n + 1);
      if (req.method !== 'PUT' || n === 0 || dropped > 0) return false;
      dropped++;
      req.socket.destroy();
      return true;
    });
    try {
      const s = makeStore(proxy.host, newRepo('reset'));
      const data = randomBytes(3 * 1024 * 1024);
      const file = join(tmp, 'reset.bin');
      await writeFile(file, data);
      expect(await s.store.putBlobFile(file)).toEqual({ digest: sha(data), size: data.length });
      expect(dropped).toBe(1);
      expect(s.methods).toEqual(['HEAD', 'POST', 'PUT', 'PUT']);
      await expectStoredOnce(s, data);
      await rm(file);
    } finally {
      await proxy.stop();
    }
  });

  it('answers batch existence queries with concurrent HEADs under the limit', async () => {
    const repo = newRepo('batch');
    const s = makeStore(reg.host, repo);
    const present: string[] = [];
    for (let i = 0; i < 20; i++)
      present.push((await s.store.putBlob(Readable.from([Buffer.from(`blob ${i}`)]))).digest);
    const absent = Array.from({ length: 5 }, (_, i) => sha(`absent ${i}`));
    let inFlight = 0;
    let maxInFlight = 0;
    const warnings: string[] = [];
    const limited = new RegistryStore({
      ref: `${reg.host}/${repo}`,
      concurrency: 3,
      onWarning: (m) => warnings.push(m),
      fetch: async (input, init) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await fetch(input, init);
        } finally {
          inFlight--;
        }
      },
    });
    expect(await limited.hasBlobs([...absent, ...present, ...present])).toEqual(new Set(present));
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(limited.stats().requests).toBe(25);

    const keys = [cacheKey('b1'), cacheKey('b2'), cacheKey('b3')];
    await s.store.putResult(result(keys[0]!, []));
    await s.store.putResult(result(keys[2]!, []));
    expect(await limited.hasResults(keys)).toEqual(new Set([keys[0], keys[2]]));
    expect(warnings).toEqual([]);
  });

  it('treats a corrupt blob as a miss with one warning, and restores nothing from it', async () => {
    const repo = newRepo('corrupt');
    const root = join(tmp, 'corrupt-src');
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out', 'data.txt'), 'precious data\n'.repeat(1000));
    const a = makeStore(reg.host, repo);
    const entries = await saveOutputs(a.store, root, ['out']);
    const key = cacheKey('corrupt');
    await a.store.putResult(result(key, entries));

    const file = reg.blobDataPath(entries[0]!.digest);
    const bytes = await readFile(file);
    bytes[bytes.length - 3000] ^= 0xff; // inside the file's contents: the tar still parses
    await writeFile(file, bytes);

    const b = makeStore(reg.host, repo);
    const got = await b.store.getResult(key);
    expect(got).not.toBeNull();
    const dest = join(tmp, 'corrupt-dest');
    await expect(restoreOutputs(blobOpenerFor(b.store), dest, got!.outputs)).rejects.toBeInstanceOf(
      CorruptBlobError,
    );
    expect(await stat(join(dest, 'out')).catch(() => null)).toBeNull();
    expect(b.warnings).toHaveLength(1);
    expect(b.warnings[0]).toMatch(/corrupt/);
    // Known corrupt from now on: a miss, no second warning.
    expect(await b.store.openBlob(entries[0]!.digest)).toBeNull();
    expect(await b.store.getResult(key)).toBeNull();
    expect(await b.store.hasBlobs([entries[0]!.digest])).toEqual(new Set());
    expect(b.warnings.filter((w) => /corrupt/.test(w) && !/result/.test(w))).toHaveLength(1);

    // A corrupt result config: a miss with a warning.
    const key2 = cacheKey('corrupt-config');
    const c = makeStore(reg.host, newRepo('corrupt-config'));
    await c.store.putResult(result(key2, []));
    const configDigest = sha(JSON.stringify(result(key2, [])));
    const cfile = reg.blobDataPath(configDigest);
    const cbytes = await readFile(cfile);
    cbytes[10] ^= 0x01;
    await writeFile(cfile, cbytes);
    const d = makeStore(reg.host, c.store.location.slice(reg.host.length + 1));
    expect(await d.store.getResult(key2)).toBeNull();
    expect(d.warnings).toHaveLength(2); // the corrupt blob, and the result it spoils
    expect(d.warnings.join('\n')).toMatch(/corrupt/);
  });

  it('stores the result of an invocation built again after its blob was found corrupt, once the registry serves it intact', async () => {
    const repo = newRepo('corrupt-rebuilt');
    const root = join(tmp, 'corrupt-rebuilt-src');
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out', 'data.txt'), 'rebuilt data\n'.repeat(1000));
    const a = makeStore(reg.host, repo);
    const entries = await saveOutputs(a.store, root, ['out']);
    const key = cacheKey('corrupt-rebuilt');
    await a.store.putResult(result(key, entries));

    const file = reg.blobDataPath(entries[0]!.digest);
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 3000] ^= 0xff;
    await writeFile(file, bad);

    // A worker finds it corrupt (removed from the repository)...
    const b = makeStore(reg.host, repo);
    const got = await b.store.getResult(key);
    await expect(
      restoreOutputs(blobOpenerFor(b.store), join(tmp, 'corrupt-rebuilt-dest'), got!.outputs),
    ).rejects.toBeInstanceOf(CorruptBlobError);
    // ...and builds it again: the registry takes the upload but keeps its corrupt bytes (it
    // stores a digest once), so the result is not stored, and the warning says why.
    const first = await saveOutputs(b.store, root, ['out']);
    expect(first.map((e) => e.digest)).toEqual(entries.map((e) => e.digest));
    await expect(b.store.putResult(result(key, first))).rejects.toThrow(
      /found corrupt in the registry/,
    );
    expect(b.warnings).toHaveLength(2);
    expect(b.warnings[1]).toMatch(/still serves its corrupt copy.*garbage collection/);
    // Once the registry's garbage collection has dropped those bytes, the same outputs go up
    // again, and so does their result.
    await rm(file);
    const again = await saveOutputs(b.store, root, ['out']);
    expect(again.map((e) => e.digest)).toEqual(entries.map((e) => e.digest));
    await b.store.putResult(result(key, again));
    expect(b.warnings).toHaveLength(2);

    const c = makeStore(reg.host, repo);
    const back = await c.store.getResult(key);
    expect(back).not.toBeNull();
    const dest = join(tmp, 'corrupt-rebuilt-dest2');
    await restoreOutputs(blobOpenerFor(c.store), dest, back!.outputs);
    expect(await readFile(join(dest, 'out', 'data.txt'), 'utf8')).toBe(
      'rebuilt data\n'.repeat(1000),
    );
    expect(c.warnings).toEqual([]);
  });

  it('verify rehashes every blob the results name: a corrupt one is reported and removed, its result then misses', async () => {
    const repo = newRepo('verify');
    const a = makeStore(reg.host, repo);
    const keys: string[] = [];
    const digests: string[] = [];
    for (const name of ['one', 'two', 'three']) {
      const root = join(tmp, `verify-${name}`);
      await mkdir(join(root, 'out'), { recursive: true });
      await writeFile(join(root, 'out', `${name}.txt`), `${name}\n`.repeat(5000));
      const entries = await saveOutputs(a.store, root, ['out']);
      const key = cacheKey(`verify-${name}`);
      await a.store.putResult(result(key, entries));
      keys.push(key);
      digests.push(entries[0]!.digest);
    }
    const clean = makeStore(reg.host, repo);
    expect(await clean.store.verify()).toEqual({
      checked: 3,
      corrupt: [],
      missing: [],
      removedResults: 0,
    });

    const file = reg.blobDataPath(digests[1]!);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(file, bytes);
    const b = makeStore(reg.host, repo);
    expect(await b.store.verify()).toEqual({
      checked: 3,
      corrupt: [digests[1]],
      missing: [],
      removedResults: 1,
    });
    expect(b.warnings.join('\n')).toMatch(/is corrupt .*removed from the repository/);
    // The result naming it is removed too: listings stop counting it, and the next verify is clean.
    const listed: string[] = [];
    for await (const r of b.store.listResults()) listed.push(r.cacheKey);
    expect(listed.sort()).toEqual([keys[0], keys[2]].sort());
    expect(await makeStore(reg.host, repo).store.verify()).toEqual({
      checked: 2,
      corrupt: [],
      missing: [],
      removedResults: 0,
    });
    // Gone from the registry: the result naming it is a miss for any reader, the others are not.
    const c = makeStore(reg.host, repo);
    expect(await c.store.hasBlobs(digests)).toEqual(new Set([digests[0], digests[2]]));
    const layered = new LayeredStore([await LocalStore.open(join(tmp, 'verify-local')), c.store]);
    expect([...(await layered.peekResults(keys)).keys()].sort()).toEqual([keys[0], keys[2]].sort());
  });

  it('verify reports and removes a result whose config blob is corrupt or gone', async () => {
    const repo = newRepo('verify-config');
    const a = makeStore(reg.host, repo);
    const good = cacheKey('verify-config-good');
    const spoilt = cacheKey('verify-config-spoilt');
    await a.store.putResult(result(good, []));
    await a.store.putResult(result(spoilt, []));
    const file = reg.blobDataPath(sha(JSON.stringify(result(spoilt, []))));
    const bytes = await readFile(file);
    bytes[10] ^= 0x01;
    await writeFile(file, bytes);

    const b = makeStore(reg.host, repo);
    expect(await b.store.verify()).toEqual({
      checked: 0,
      corrupt: [],
      missing: [],
      removedResults: 0,
      badResults: [spoilt],
    });
    expect(b.warnings.join('\n')).toMatch(/corrupt config blob/);
    // Removed: listings stop counting it, and the next verify is clean.
    const listed: string[] = [];
    for await (const r of b.store.listResults()) listed.push(r.cacheKey);
    expect(listed).toEqual([good]);
    expect(await makeStore(reg.host, repo).store.verify()).toEqual({
      checked: 0,
      corrupt: [],
      missing: [],
      removedResults: 0,
    });
  });

  it('verify and prune fail, removing nothing, when the registry does not serve a blob or result now', async () => {
    const repo = newRepo('verify-503');
    const a = makeStore(reg.host, repo);
    const keys: string[] = [];
    const digests: string[] = [];
    for (const name of ['one', 'two']) {
      const root = join(tmp, `verify-503-${name}`);
      await mkdir(join(root, 'out'), { recursive: true });
      await writeFile(join(root, 'out', `${name}.txt`), `${name} (503)\n`.repeat(5000));
      const entries = await saveOutputs(a.store, root, ['out']);
      const key = cacheKey(`verify-503-${name}`);
      await a.store.putResult(result(key, entries));
      keys.push(key);
      digests.push(entries[0]!.digest);
    }
    // As a registry that is overloaded or rate limits: 503 for one output blob, then for a manifest.
    let unavailable = `/blobs/${digests[1]}`;
    const proxy = await startProxy(reg.host, (req, res) => {
      if (req.method !== 'GET' || !req.url?.endsWith(unavailable)) return false;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try again later' }] }));
      return true;
    });
    const listed = async () => {
      const out: string[] = [];
      for await (const r of a.store.listResults()) out.push(r.cacheKey);
      return out.sort();
    };
    try {
      const b = makeStore(proxy.host, repo);
      await expect(b.store.verify()).rejects.toThrow(/GET blob .*unexpected HTTP 503/);
      expect(await listed()).toEqual([...keys].sort());
      unavailable = `/manifests/${RegistryStore.tagFor(keys[1]!)}`;
      const c = makeStore(proxy.host, repo);
      await expect(c.store.verify()).rejects.toThrow(/unexpected HTTP 503/);
      await expect(c.store.prune(0)).rejects.toThrow(/unexpected HTTP 503/);
      expect(await listed()).toEqual([...keys].sort());
      expect(await a.store.hasBlobs(digests)).toEqual(new Set(digests));
    } finally {
      await proxy.stop();
    }
    expect(await makeStore(reg.host, repo).store.verify()).toEqual({
      checked: 2,
      corrupt: [],
      missing: [],
      removedResults: 0,
    });
  });

  it('prune removes the oldest results, then the blobs no remaining result names, down to the limit', async () => {
    const repo = newRepo('prune');
    const a = makeStore(reg.host, repo);
    const made: { key: string; digest: string; size: number }[] = [];
    for (const [i, name] of ['old', 'mid', 'new'].entries()) {
      const root = join(tmp, `prune-${name}`);
      await mkdir(join(root, 'out'), { recursive: true });
      await writeFile(join(root, 'out', `${name}.bin`), randomBytes(40_000));
      const entries = await saveOutputs(a.store, root, ['out']);
      const key = cacheKey(`prune-${name}`);
      await a.store.putResult({
        ...result(key, entries),
        createdAt: `2024-01-0${i + 1}T00:00:00.000Z`,
      });
      made.push({ key, digest: entries[0]!.digest, size: entries[0]!.size });
    }
    const total = made.reduce((n, m) => n + m.size, 0);
    const b = makeStore(reg.host, repo);
    // Under the limit: nothing to do.
    expect(await b.store.prune(total)).toEqual({
      removedBlobs: 0,
      removedResults: 0,
      freedBytes: 0,
      bytes: total,
    });
    // Room for two: the oldest result and its blob go.
    const r = await b.store.prune(total - 1);
    expect(r).toEqual({
      removedBlobs: 1,
      removedResults: 1,
      freedBytes: made[0]!.size,
      bytes: total - made[0]!.size,
    });
    const c = makeStore(reg.host, repo);
    expect(await c.store.getResult(made[0]!.key)).toBeNull();
    expect(await c.store.getResult(made[2]!.key)).not.toBeNull();
    expect(await c.store.hasBlobs(made.map((m) => m.digest))).toEqual(
      new Set([made[1]!.digest, made[2]!.digest]),
    );
    const listed: string[] = [];
    for await (const l of c.store.listResults()) listed.push(l.cacheKey);
    expect(listed.sort()).toEqual([made[1]!.key, made[2]!.key].sort());
  });

  it('mounts blobs from another repository instead of uploading them', async () => {
    const from = newRepo('mount-src');
    const to = newRepo('mount-dst');
    const data = randomBytes(200_000);
    const a = makeStore(reg.host, from);
    const { digest } = await a.store.putBlob(Readable.from([data]));
    const b = makeStore(reg.host, to, { 'mount-from': from });
    expect(await b.store.hasBlobs([digest])).toEqual(new Set());
    expect(await b.store.putBlob(Readable.from([data]), digest)).toEqual({
      digest,
      size: data.length,
    });
    expect(b.store.stats()).toMatchObject({ uploadedBytes: 0, mountedBlobs: 1 });
    expect(await b.store.hasBlobs([digest])).toEqual(new Set([digest]));
    expect(sha(await readAll((await b.store.openBlob(digest))!))).toBe(digest);
    // Not in the source repository: uploaded after all.
    const other = randomBytes(1000);
    expect(await b.store.putBlob(Readable.from([other]), sha(other))).toEqual({
      digest: sha(other),
      size: 1000,
    });
    expect(b.store.stats()).toMatchObject({ uploadedBytes: 1000, mountedBlobs: 1 });
    expect(b.warnings).toEqual([]);
  });

  it('falls back to plain manifests when the registry rejects artifact manifests, and remembers', async () => {
    const proxy = await startRejectingProxy(reg.host);
    try {
      const repo = newRepo('plain');
      const s = makeStore(proxy.host, repo);
      const root = await makeTree('plain');
      const entries = await saveOutputs(s.store, root, ['out']);
      const k1 = cacheKey('p1');
      const k2 = cacheKey('p2');
      await s.store.putResult(result(k1, entries));
      expect(proxy.rejected).toBe(1);
      expect(s.store.stats().plainManifests).toBe(true);
      await s.store.putResult(result(k2, entries, 'other'));
      expect(proxy.rejected).toBe(1);

      const t = makeStore(proxy.host, repo);
      expect(await t.store.getResult(k1)).toEqual(result(k1, entries));
      expect(await t.store.getResult(k2)).toEqual(result(k2, entries, 'other'));
      const res = await fetch(`${reg.url}/v2/${repo}/manifests/${RegistryStore.tagFor(k1)}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      const doc = (await res.json()) as { artifactType?: string; config: { mediaType: string } };
      expect(doc.artifactType).toBeUndefined();
      expect(doc.config.mediaType).toBe(OCI_CONFIG_TYPE);
      expect([...s.warnings, ...t.warnings]).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('registry store over https', () => {
  it('verifies the certificate (an untrusted one is a miss with a warning)', async () => {
    const ca = await createCA({ name: 'dist-build test registry CA', days: 2 });
    const leaf = await issueCert(ca, { name: 'registry', role: 'master', hosts: ['127.0.0.1'] });
    let requests = 0;
    const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      requests++;
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const warnings: string[] = [];
      const s = new RegistryStore({
        ref: `127.0.0.1:${port}/org/cache`,
        insecure: false,
        onWarning: (m) => warnings.push(m),
      });
      expect(await s.hasBlobs([sha('x')])).toEqual(new Set());
      expect(requests).toBe(0);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/unreachable .*(certificate|self.signed)/i);
      await expect(s.putBlob(Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describeRegistry('registry store when the registry is down', () => {
  it('misses with one warning, and puts throw StoreUnavailableError', async () => {
    const reg = await startRegistry();
    const repo = newRepo('down');
    const s = makeStore(reg.host, repo);
    const { digest } = await s.store.putBlob(Readable.from([Buffer.from('x')]));
    const key = cacheKey('down');
    await s.store.putResult(result(key, []));
    await reg.stop();

    expect(await s.store.hasBlobs([digest])).toEqual(new Set());
    expect(await s.store.hasResults([key])).toEqual(new Set());
    expect(await s.store.getResult(key)).toBeNull();
    expect(await s.store.openBlob(digest)).toBeNull();
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/unreachable/);
    await expect(s.store.putBlob(Readable.from([Buffer.from('y')]))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await expect(s.store.putResult(result(key, []))).rejects.toBeInstanceOf(StoreUnavailableError);

    // A fresh store (no back-off memory) fails the same way.
    const t = makeStore(reg.host, repo);
    await expect(t.store.putBlob(Readable.from([Buffer.from('y')]))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(await t.store.getResult(key)).toBeNull();
    expect(t.warnings).toHaveLength(1);
  });
});

describeRegistry('registry store with token auth', () => {
  let tokens: TokenServer;
  let reg: RegistryProcess;
  const user = 'alice';
  const password = 'pa55-w0rd:with-colon';

  beforeAll(async () => {
    tokens = await startTokenServer({ [user]: password, reader: 'r' }, { pullOnly: ['reader'] });
    reg = await startRegistry({ tokenAuth: tokens });
  });

  afterAll(async () => {
    await reg?.stop();
    await tokens?.stop();
  });

  it('refuses anonymous access (the registry really checks tokens)', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
  });

  it('works with credentials from the environment and from a Docker config', async () => {
    const repo = newRepo('auth');
    const env = { DIST_BUILD_REGISTRY_USERNAME: user, DIST_BUILD_REGISTRY_PASSWORD: password };
    const a = makeStore(reg.host, repo, {}, env);
    const root = await makeTree('auth');
    const entries = await saveOutputs(a.store, root, ['out', 'single.txt']);
    const key = cacheKey('auth');
    await a.store.putResult(result(key, entries));
    expect(tokens.issued).toBeGreaterThan(0);
    expect(tokens.issued).toBeLessThanOrEqual(2); // cached per scope
    expect(tokens.scopes).toContain(`repository:${repo}:pull,push`);

    const dockerConfig = join(tmp, 'docker-config');
    await mkdir(dockerConfig, { recursive: true });
    const auth = Buffer.from(`${user}:${password}`).toString('base64');
    await writeFile(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { 'other.example.com': { auth: 'eDp5' }, [reg.host]: { auth } } }),
    );
    const b = makeStore(reg.host, repo, {}, { DOCKER_CONFIG: dockerConfig, HOME: tmp });
    const got = await b.store.getResult(key);
    expect(got).toEqual(result(key, entries));
    const dest = join(tmp, 'auth-restored');
    await restoreOutputs(blobOpenerFor(b.store), dest, got!.outputs);
    expect(await readFile(join(dest, 'single.txt'), 'utf8')).toBe('single auth\n');

    // Cross-repository mount with token auth (pull on the source is asked for as well).
    const c = makeStore(reg.host, newRepo('auth-dst'), { 'mount-from': repo }, env);
    expect(await c.store.putBlob(Readable.from([]), entries[1]!.digest)).toEqual({
      digest: entries[1]!.digest,
      size: entries[1]!.size,
    });
    expect(c.store.stats().mountedBlobs).toBe(1);
    expect([...a.warnings, ...b.warnings, ...c.warnings]).toEqual([]);
  });

  it('a read-only account: reads work, and after one refused write the next fail at once, with no token asked for', async () => {
    const repo = newRepo('auth-ro');
    const env = { DIST_BUILD_REGISTRY_USERNAME: user, DIST_BUILD_REGISTRY_PASSWORD: password };
    const root = await makeTree('auth-ro');
    const writer = makeStore(reg.host, repo, {}, env);
    const [entry] = await saveOutputs(writer.store, root, ['out']);
    const key = cacheKey('auth-ro');
    await writer.store.putResult(result(key, [entry!]));
    const reader = makeStore(
      reg.host,
      repo,
      {},
      {
        DIST_BUILD_REGISTRY_USERNAME: 'reader',
        DIST_BUILD_REGISTRY_PASSWORD: 'r',
      },
    );
    expect(await reader.store.getResult(key)).toEqual(result(key, [entry!]));
    await expect(saveOutputs(reader.store, root, ['single.txt'])).rejects.toThrow(/access denied/);
    const issued = tokens.issued;
    await writeFile(join(root, 'single.txt'), 'changed\n');
    await expect(saveOutputs(reader.store, root, ['single.txt'])).rejects.toThrow(/access denied/);
    await expect(reader.store.putResult(result(cacheKey('auth-ro-2'), [entry!]))).rejects.toThrow(
      /access denied/,
    );
    expect(tokens.issued).toBe(issued);
    // Reads still work.
    expect(await reader.store.getResult(key)).toEqual(result(key, [entry!]));
  });

  it('sends a large body again, from the file, after a 401 in the middle of it', async () => {
    const repo = newRepo('auth-401');
    let refused = 0;
    // As a registry does when the token expired meanwhile: 401 before reading the body.
    const proxy = await startProxy(reg.host, (req, res) => {
      const large = Number(req.headers['content-length'] ?? 0) >= 1024 * 1024;
      if (!large || refused > 0) return false;
      refused++;
      req.resume();
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:${repo}:pull,push"`,
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token expired' }] }));
      return true;
    });
    try {
      const env = { DIST_BUILD_REGISTRY_USERNAME: user, DIST_BUILD_REGISTRY_PASSWORD: password };
      const s = makeStore(proxy.host, repo, {}, env);
      const data = randomBytes(5 * 1024 * 1024);
      const file = join(tmp, 'auth-401.bin');
      await writeFile(file, data);
      const issued = tokens.issued;
      expect(await s.store.putBlobFile(file)).toEqual({ digest: sha(data), size: data.length });
      expect(refused).toBe(1);
      expect(tokens.issued).toBe(issued + 2); // the first token, and the renewed one
      expect(s.methods).toEqual(['HEAD', 'HEAD', 'POST', 'PUT', 'PUT']);
      await expectStoredOnce(s, data);
      await rm(file);
    } finally {
      await proxy.stop();
    }
  });

  it('fails cleanly with wrong or missing credentials: a warning and misses', async () => {
    const repo = newRepo('auth-bad');
    const bad = makeStore(
      reg.host,
      repo,
      {},
      {
        DIST_BUILD_REGISTRY_USERNAME: user,
        DIST_BUILD_REGISTRY_PASSWORD: 'wrong-secret',
      },
    );
    const key = cacheKey('bad');
    expect(await bad.store.getResult(key)).toBeNull();
    expect(await bad.store.hasBlobs([sha('x')])).toEqual(new Set());
    expect(bad.warnings).toHaveLength(1);
    expect(bad.warnings[0]).toMatch(/refused the credentials from DIST_BUILD_REGISTRY_USERNAME/);
    expect(bad.warnings[0]).not.toContain('wrong-secret');
    await expect(bad.store.putBlob(Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );

    const anon = makeStore(reg.host, repo, {}, { HOME: join(tmp, 'no-home') });
    expect(await anon.store.hasResults([key])).toEqual(new Set());
    expect(anon.warnings).toHaveLength(1);
    expect(anon.warnings[0]).toMatch(/anonymous/);
  });
});

// ---------------------------------------------------------------------------------------------

type Forward = (body?: Buffer, onResponse?: (res: IncomingMessage) => void) => void;

/**
 * A proxy in front of the real registry: `intercept` sees every request first and answers it
 * itself (returning true) or not; `forward` passes a request through, optionally with a body it
 * read already and watching the answer (which it must then write to `res` itself).
 */
async function startProxy(
  target: string,
  intercept: (req: IncomingMessage, res: ServerResponse, forward: Forward) => boolean = () => false,
): Promise<{ host: string; stop(): Promise<void> }> {
  const [targetHost, targetPort] = target.split(':');
  const server: Server = createServer((req, res) => {
    const forward: Forward = (body, onResponse) => {
      const up = httpRequest(
        {
          host: targetHost,
          port: Number(targetPort),
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (upRes) => {
          if (onResponse) return onResponse(upRes);
          res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers });
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      if (body) up.end(body);
      else req.pipe(up);
    };
    if (!intercept(req, res, forward)) forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A proxy that passes blob downloads through for their first MiB only, then cuts the connection
 * or stalls (sends nothing more, as a registry that hangs).
 */
async function startShortBlobProxy(
  target: string,
  then: 'cut' | 'stall',
): Promise<{ host: string; cut: number; stop(): Promise<void> }> {
  const state = { cut: 0 };
  const proxy = await startProxy(target, (req, res, forward) => {
    if (req.method !== 'GET' || !req.url?.includes('/blobs/sha256:')) return false;
    forward(undefined, (up) => {
      res.writeHead(up.statusCode ?? 502, { ...up.headers });
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (sent < 1024 * 1024) {
          sent += chunk.length;
          res.write(chunk);
        } else if (then === 'cut' && !res.destroyed) {
          state.cut++;
          up.destroy();
          res.destroy();
        }
      });
    });
    return true;
  });
  return {
    host: proxy.host,
    get cut() {
      return state.cut;
    },
    stop: () => proxy.stop(),
  };
}

/**
 * A proxy that rejects manifests carrying an `artifactType` (as registries without artifact
 * support do) and passes everything else through.
 */
async function startRejectingProxy(
  target: string,
): Promise<{ host: string; rejected: number; stop(): Promise<void> }> {
  const state = { rejected: 0 };
  const proxy = await startProxy(target, (req, res, forward) => {
    if (req.method !== 'PUT' || !/\/manifests\//.test(req.url ?? '')) return false;
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const doc = JSON.parse(body.toString('utf8')) as { artifactType?: string };
      if (doc.artifactType !== undefined) {
        state.rejected++;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid' }] }),
        );
        return;
      }
      forward(body);
    });
    return true;
  });
  return {
    host: proxy.host,
    get rejected() {
      return state.rejected;
    },
    stop: () => proxy.stop(),
  };
}

describeRegistry('dist-build run with a local store in front of a registry', () => {
  let reg: RegistryProcess;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await stopAll();
    await reg?.stop();
  });

  it('a run with nothing to build fetches only what it exports from the registry', async () => {
    const root = join(tmp, 'run-layered');
    await mkdir(root, { recursive: true });
    const config = join(root, 'dist-build.yml');
    await writeFile(
      config,
      `version: 1
cache:
  stores:
    - { type: local, dir: local-cache }
    - { type: registry, ref: ${reg.host}/${newRepo('run')} }
invocations:
  a: { run: mkdir -p out && head -c 100000 /dev/urandom > out/a.bin, outputs: [out/a.bin] }
  b: { run: mkdir -p out && cat out/a.bin out/a.bin > out/b.bin, outputs: [out/b.bin], needs: [a] }
  c: { run: mkdir -p out && head -c 1000 out/b.bin > out/c.bin, outputs: [out/c.bin], needs: [b], export: true }
`,
    );
    const run = () =>
      runCli(['run', '--config', config, '--workers', '3', '--out', join(root, 'artifacts')], {
        timeoutMs: 90_000,
      });
    const first = await run();
    expect(first.code).toBe(0);
    const digestOf = (unit: string) =>
      runReport(join(root, 'artifacts')).invocations.find((i) => i.unit === unit)!.outputs[0]!
        .digest;
    const digests = { a: digestOf('a'), b: digestOf('b'), c: digestOf('c') };

    // A fresh machine: the local store is empty, the registry has everything.
    await rm(join(root, 'local-cache'), { recursive: true, force: true });
    await rm(join(root, 'out'), { recursive: true, force: true });
    const second = await run();
    expect(second.code).toBe(0);
    expect(statuses(join(root, 'artifacts'))).toEqual({
      a: 'cached',
      b: 'cached',
      c: 'cached',
    });
    expect(readFileSync(join(root, 'artifacts/out/c.bin')).length).toBe(1000);
    // Only the exported blob came into the local store (each of the 3 workers answering the
    // cache query used to copy every result, blobs and all).
    const local = await LocalStore.open(join(root, 'local-cache'));
    expect(await local.hasBlobs(Object.values(digests))).toEqual(new Set([digests.c]));
    // ... with its result: offline, the exported unit is cached too (the others are built).
    const offline = await runCli(
      ['run', '--config', config, '--workers', '1', '--no-remote-cache', '--out', join(root, 'o2')],
      { timeoutMs: 90_000 },
    );
    expect(offline.code).toBe(0);
    expect(statuses(join(root, 'o2'))).toEqual({
      a: 'built',
      b: 'built',
      c: 'cached',
    });

    // cache stats counts the registry by its list of results.
    const stats = await runCli(['cache', 'stats', '--config', config, '--json']);
    expect(stats.code).toBe(0);
    const registry = (
      JSON.parse(stats.stdout) as { stores: { type: string; results?: number; bytes?: number }[] }
    ).stores.find((r) => r.type === 'registry')!;
    expect(registry.results).toBe(3);
    expect(registry.bytes).toBeGreaterThan(200_000);
    expect(stats.stderr).toBe('');
  });
});

describe('a registry that accepts connections and never answers', () => {
  afterEach(() => stopAll());

  it('is asked less and less while it keeps timing out, and as before once it answers', async () => {
    const sockets = new Set<Socket>();
    let answer = false;
    const hung = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('data', () => {
        if (answer) s.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      });
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    let now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const requests: string[] = [];
      const store = new RegistryStore({
        ref: `127.0.0.1:${port}/team/cache`,
        timeoutMs: 200,
        onRequest: (method) => requests.push(method),
      });
      const key = cacheKey('hung');
      const asked = async (): Promise<boolean> => {
        const before = requests.length;
        expect(await store.hasResults([key])).toEqual(new Set());
        return requests.length > before;
      };
      // The timeouts themselves run on real timers; the back-off is read from the mocked clock.
      const tick = setInterval(() => (now += 10), 10);
      try {
        expect(await asked()).toBe(true); // times out: left alone for 30 s
        const down = Date.now();
        now = down + 29_000;
        expect(await asked()).toBe(false);
        now = down + 31_000;
        expect(await asked()).toBe(true); // times out again: 60 s
        const again = Date.now();
        now = again + 59_000;
        expect(await asked()).toBe(false);
        now = again + 61_000;
        expect(await asked()).toBe(true); // and again: 120 s
        now = Date.now() + 119_000;
        expect(await asked()).toBe(false);
        // It answers: 30 s after the next failure, not more.
        now += 2_000;
        answer = true;
        expect(await asked()).toBe(true);
        answer = false;
        expect(await asked()).toBe(true);
        const last = Date.now();
        now = last + 31_000;
        expect(await asked()).toBe(true);
      } finally {
        clearInterval(tick);
      }
    } finally {
      clock.mockRestore();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });

  it('costs the cache query its 20 s, not the local hits, and no worker waits for its timeouts', async () => {
    const sockets = new Set<Socket>();
    const hung = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    try {
      const root = join(tmp, 'run-hung');
      await mkdir(root, { recursive: true });
      await writeFile(join(root, 'c.txt'), 'one\n');
      const invocations = `invocations:
  a: { run: mkdir -p out && echo a > out/a.txt, outputs: [out/a.txt] }
  b: { run: mkdir -p out && cat out/a.txt > out/b.txt, outputs: [out/b.txt], needs: [a] }
  c: { run: mkdir -p out && cat out/b.txt c.txt > out/c.txt, inputs: [c.txt], outputs: [out/c.txt], needs: [b], export: true }
`;
      const local = join(root, 'local.yml');
      await writeFile(
        local,
        `version: 1\ncache: { stores: [{ type: local, dir: cache }] }\n${invocations}`,
      );
      const withHung = join(root, 'dist-build.yml');
      await writeFile(
        withHung,
        `version: 1\ncache: { stores: [{ type: local, dir: cache }, { type: registry, ref: 127.0.0.1:${port}/team/cache }] }\n${invocations}`,
      );
      const run = (config: string) =>
        runCli(['run', '--config', config, '--workers', '2', '--out', join(root, 'artifacts')], {
          timeoutMs: 60_000, // the registry requests' own timeout: a run waiting for them fails
        });
      expect((await run(local)).code).toBe(0);
      await writeFile(join(root, 'c.txt'), 'two\n');
      const second = await run(withHung);
      expect(second.code).toBe(0);
      expect(statuses(join(root, 'artifacts'))).toEqual({
        a: 'cached',
        b: 'cached',
        c: 'built',
      });
      expect(second.stderr).toMatch(/no answer within the cache query's 20 s; left alone for 60 s/);
      expect(readFileSync(join(root, 'artifacts/out/c.txt'), 'utf8')).toBe('a\ntwo\n');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });
});
