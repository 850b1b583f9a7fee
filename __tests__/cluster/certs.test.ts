import { Command, CommanderError } from 'commander';
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import type { ConnectionOptions, Server } from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  CertError,
  certSummary,
  createCA,
  ephemeralTls,
  issueCert,
  loadTls,
  readCA,
  writeCA,
  writeCert,
} from '../../src/cluster/certs.js';
import type { KeyPair, TlsFiles } from '../../src/cluster/certs.js';
import { registerCerts } from '../../src/cli/commands/certs.js';
import { captured } from '../helpers/capture.js';
import { UsageError } from '../../src/cli/errors.js';

const DAY = 86_400_000;

// Everything a test opens, closed in afterEach whatever happened.
const servers: Server[] = [];
const sockets = new Set<Socket>();
let dirs: string[] = [];

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dist-build-certs-'));
  dirs.push(d);
  return d;
}

const mode = (file: string): number => statSync(file).mode & 0o777;

interface ServerSide {
  ok: boolean;
  peer?: string;
  error?: string;
  /** Why the client certificate is not trusted (seen only with `rejectUnauthorized: false`). */
  reason?: string;
}
interface ClientSide {
  data: string;
  peer?: string;
  error?: string;
}

/**
 * One TLS connection to a fresh mutual-TLS server on 127.0.0.1 (requestCert, rejectUnauthorized).
 * The server answers an accepted client with "hello <client CN>" and closes. `diagnose` turns
 * rejectUnauthorized off, to read why a client certificate is not trusted.
 */
async function handshake(
  server: TlsFiles,
  client: Partial<ConnectionOptions>,
  diagnose = false,
): Promise<{ client: ClientSide; server: Promise<ServerSide> }> {
  const srv = createServer({
    ca: server.ca,
    cert: server.cert,
    key: server.key,
    requestCert: true,
    rejectUnauthorized: !diagnose,
  });
  servers.push(srv);
  srv.on('connection', (s: Socket) => sockets.add(s));
  const serverSide = new Promise<ServerSide>((resolve) => {
    srv.on('secureConnection', (s) => {
      sockets.add(s);
      s.on('error', () => {});
      const peer = String(s.getPeerCertificate().subject?.CN);
      const reason = s.authorizationError;
      resolve({ ok: s.authorized, peer, ...(reason ? { reason: String(reason) } : {}) });
      s.end(`hello ${peer}`);
    });
    srv.on('tlsClientError', (err) => resolve({ ok: false, error: err.message }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const { port } = srv.address() as AddressInfo;
  const clientSide = await new Promise<ClientSide>((resolve) => {
    const s = connect({ host: '127.0.0.1', port, ...client });
    sockets.add(s);
    const result: ClientSide = { data: '' };
    s.on('secureConnect', () => (result.peer = String(s.getPeerCertificate().subject?.CN)));
    s.on('data', (d: Buffer) => (result.data += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => (result.error ??= `${e.code}: ${e.message}`));
    s.on('close', () => resolve(result));
  });
  return { client: clientSide, server: serverSide };
}

const asClient = (tls: TlsFiles): Partial<ConnectionOptions> => ({
  ca: tls.ca,
  cert: tls.cert,
  key: tls.key,
});

let ca: KeyPair;
let master: TlsFiles;
let worker: TlsFiles;
beforeAll(async () => {
  ca = await createCA();
  master = { ca: ca.cert, ...(await issueCert(ca, { name: 'master', role: 'master' })) };
  worker = { ca: ca.cert, ...(await issueCert(ca, { name: 'worker-1', role: 'worker' })) };
});

describe('mutual TLS with cluster certificates', () => {
  it('accepts a client of the same CA and checks the server identity (localhost and 127.0.0.1)', async () => {
    for (const servername of ['localhost', undefined]) {
      const r = await handshake(master, {
        ...asClient(worker),
        ...(servername ? { servername } : {}),
      });
      expect(r.client).toEqual({ data: 'hello worker-1', peer: 'master' });
      expect(await r.server).toEqual({ ok: true, peer: 'worker-1' });
    }
    // The name is really checked: a server name outside the certificate is refused.
    const wrong = await handshake(master, { ...asClient(worker), servername: 'build.example' });
    expect(wrong.client.data).toBe('');
    expect(wrong.client.error).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('works in both directions (every certificate is for server and client auth)', async () => {
    const r = await handshake(worker, asClient(master));
    expect(r.client).toEqual({ data: 'hello master', peer: 'worker-1' });
  });

  it('refuses a client certificate from another CA', async () => {
    const other = await createCA({ name: 'other CA' });
    const stranger = await issueCert(other, { name: 'worker-1', role: 'worker' });
    const r = await handshake(master, { ca: ca.cert, ...stranger });
    expect(r.client.data).toBe('');
    expect(await r.server).toMatchObject({ ok: false });
    const why = await handshake(master, { ca: ca.cert, ...stranger }, true);
    expect(await why.server).toMatchObject({
      ok: false,
      reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('refuses a server certificate from another CA (workers check the master)', async () => {
    const other = await createCA({ name: 'other CA' });
    const fake = await issueCert(other, { name: 'master', role: 'master' });
    const r = await handshake({ ca: ca.cert, ...fake }, asClient(worker));
    expect(r.client.data).toBe('');
    expect(r.client.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i);
  });

  it('refuses a client without a certificate', async () => {
    const r = await handshake(master, { ca: ca.cert });
    expect(r.client.data).toBe('');
    const s = await r.server;
    expect(s.ok).toBe(false);
    expect(s.error).toMatch(/certificate/i);
  });

  it('refuses an expired client certificate', async () => {
    const now = Date.now();
    const old = await issueCert(ca, {
      name: 'worker-1',
      role: 'worker',
      notBefore: new Date(now - 30 * DAY),
      notAfter: new Date(now - DAY),
    });
    const r = await handshake(master, { ca: ca.cert, ...old });
    expect(r.client.data).toBe('');
    expect(await r.server).toMatchObject({ ok: false });
    const why = await handshake(master, { ca: ca.cert, ...old }, true);
    expect(await why.server).toMatchObject({ ok: false, reason: 'CERT_HAS_EXPIRED' });
  });
});

describe('certificate contents', () => {
  it('makes a P-256 CA and leaf certificates with PKCS#8 keys and both TLS purposes', () => {
    expect(ca.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(worker.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const caX = new X509Certificate(ca.cert);
    const leaf = new X509Certificate(worker.cert);
    expect(caX.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(leaf.checkIssued(caX)).toBe(true);
    expect(leaf.verify(caX.publicKey)).toBe(true);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(leaf.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(certSummary(ca.cert)).toMatchObject({ subject: 'CN=dist-build CA, O=dist-build' });
  });

  it('certSummary reads back role, hosts, validity and fingerprint', async () => {
    const pair = await issueCert(ca, {
      name: 'build-master',
      role: 'master',
      hosts: ['10.1.2.3', 'Build-1.Internal', '[2001:db8::1]', 'localhost'],
      days: 10,
    });
    const s = certSummary(pair.cert);
    expect(s.subject).toBe('CN=build-master, O=dist-build, OU=master');
    expect(s.role).toBe('master');
    expect(s.hosts).toEqual([
      'localhost',
      '127.0.0.1',
      '::1',
      '10.1.2.3',
      'build-1.internal',
      '2001:db8::1',
    ]);
    expect(s.fingerprint).toBe(new X509Certificate(pair.cert).fingerprint256);
    const days = (s.notAfter.getTime() - s.notBefore.getTime()) / DAY;
    expect(days).toBeGreaterThan(10);
    expect(days).toBeLessThan(10.01);
    expect(s.notBefore.getTime()).toBeLessThan(Date.now());
    expect(certSummary(ca.cert).role).toBeNull();
    expect(certSummary(ca.cert).hosts).toEqual([]);
  });

  it('rejects bad hosts, roles and mismatched CA keys', async () => {
    await expect(
      issueCert(ca, { name: 'w', role: 'worker', hosts: ['https://x.example/'] }),
    ).rejects.toThrow(CertError);
    await expect(issueCert(ca, { name: 'w', role: 'boss' as unknown as 'worker' })).rejects.toThrow(
      /invalid role/,
    );
    const other = await createCA();
    await expect(
      issueCert({ cert: ca.cert, key: other.key }, { name: 'w', role: 'worker' }),
    ).rejects.toThrow(/does not belong/);
    await expect(issueCert(worker, { name: 'w', role: 'worker' })).rejects.toThrow(/not a CA/);
    await expect(
      issueCert(ca, {
        name: 'w',
        role: 'worker',
        notBefore: new Date(),
        notAfter: new Date(Date.now() - DAY),
      }),
    ).rejects.toThrow(/notAfter/);
  });

  it('ephemeralTls: one CA, distinct certificates that all chain to it', async () => {
    const names = ['master', 'client', ...Array.from({ length: 16 }, (_, i) => `worker-${i + 1}`)];
    const { ca: eca, tls } = await ephemeralTls(names);
    expect(Object.keys(tls)).toEqual(names);
    const caX = new X509Certificate(eca.cert);
    for (const n of names) {
      expect(tls[n]!.ca).toBe(eca.cert);
      const leaf = new X509Certificate(tls[n]!.cert);
      expect(leaf.checkIssued(caX)).toBe(true);
      expect(leaf.verify(caX.publicKey)).toBe(true);
      expect(certSummary(tls[n]!.cert)).toMatchObject({
        // `dist-build status` / `logs` use the client's certificate while the run goes on.
        subject: `CN=${n}, O=dist-build, OU=${n === 'master' || n === 'client' ? n : 'worker'}`,
      });
    }
    const distinct = (f: (t: TlsFiles) => string): number =>
      new Set(names.map((n) => f(tls[n]!))).size;
    expect(distinct((t) => t.cert)).toBe(18);
    expect(distinct((t) => t.key)).toBe(18);
    expect(distinct((t) => new X509Certificate(t.cert).serialNumber)).toBe(18);
    const r = await handshake(tls.master!, asClient(tls['worker-16']!));
    expect(r.client).toEqual({ data: 'hello worker-16', peer: 'master' });
  });
});

describe('certificate files', () => {
  it('writes the CA and certificates with safe modes and reads them back', async () => {
    const dir = join(tempDir(), 'deep', 'certs');
    const files = await writeCA(dir, ca);
    expect(files).toEqual({ certFile: join(dir, 'ca.pem'), keyFile: join(dir, 'ca-key.pem') });
    expect(mode(dir)).toBe(0o700);
    expect(mode(files.certFile)).toBe(0o644);
    expect(mode(files.keyFile)).toBe(0o600);
    expect(await readCA(dir)).toEqual(ca);

    const w = await writeCert(dir, 'worker-1', worker);
    expect(w).toEqual({
      certFile: join(dir, 'worker-1.pem'),
      keyFile: join(dir, 'worker-1-key.pem'),
    });
    expect(mode(w.certFile)).toBe(0o644);
    expect(mode(w.keyFile)).toBe(0o600);
    expect(await loadTls(dir, 'worker-1')).toEqual(worker);

    // Re-issuing never keeps a wider mode of the file it replaces.
    chmodSync(w.keyFile, 0o644);
    await writeCert(dir, 'worker-1', worker);
    expect(mode(w.keyFile)).toBe(0o600);
  });

  it('refuses to overwrite a CA unless forced', async () => {
    const dir = tempDir();
    await writeCA(dir, ca);
    const other = await createCA({ name: 'second' });
    await expect(writeCA(dir, other)).rejects.toThrow(CertError);
    await expect(writeCA(dir, other)).rejects.toThrow(/ca\.pem already exists.*--force/);
    expect(await readCA(dir)).toEqual(ca);
    await writeCA(dir, other, { force: true });
    expect(await readCA(dir)).toEqual(other);
    expect(mode(join(dir, 'ca-key.pem'))).toBe(0o600);
  });

  it('loadTls names the missing file and the command that makes it', async () => {
    const dir = tempDir();
    await expect(loadTls(dir, 'worker-1')).rejects.toThrow(
      new RegExp(`${join(dir, 'ca.pem')} not found: .*dist-build certs init --dir`),
    );
    await writeCA(dir, ca);
    const err = await loadTls(dir, 'worker-9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertError);
    expect((err as Error).message).toContain(join(dir, 'worker-9.pem'));
    expect((err as Error).message).toContain('dist-build certs issue --name worker-9');
    await writeCert(dir, 'worker-9', worker);
    rmSync(join(dir, 'worker-9-key.pem'));
    await expect(loadTls(dir, 'worker-9')).rejects.toThrow(/worker-9-key\.pem not found/);
  });

  it('loadTls refuses a certificate of another CA, a foreign key and an expired certificate', async () => {
    const dir = tempDir();
    await writeCA(dir, ca);
    const other = await createCA();
    await writeCert(dir, 'a', await issueCert(other, { name: 'a', role: 'worker' }));
    await expect(loadTls(dir, 'a')).rejects.toThrow(/not issued by the CA/);
    await writeCert(dir, 'b', { cert: worker.cert, key: master.key });
    await expect(loadTls(dir, 'b')).rejects.toThrow(/does not belong/);
    const now = Date.now();
    const old = await issueCert(ca, {
      name: 'c',
      role: 'worker',
      notBefore: new Date(now - 2 * DAY),
      notAfter: new Date(now - DAY),
    });
    await writeCert(dir, 'c', old);
    await expect(loadTls(dir, 'c')).rejects.toThrow(/expired/);
  });

  it('refuses a private key every user may read (the CA key and member keys), naming the file', async () => {
    const dir = tempDir();
    await writeCA(dir, ca);
    const w = await writeCert(dir, 'worker-1', worker);
    chmodSync(w.keyFile, 0o644);
    const err = await loadTls(dir, 'worker-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertError);
    expect((err as Error).message).toBe(
      `${w.keyFile} is a private key open to every user of this machine (mode 0644): make it private with \`chmod 600 ${w.keyFile}\``,
    );
    chmodSync(w.keyFile, 0o640); // a group that shares it is the owner's choice
    expect(await loadTls(dir, 'worker-1')).toEqual(worker);
    chmodSync(join(dir, 'ca-key.pem'), 0o604);
    await expect(readCA(dir)).rejects.toThrow(
      /ca-key\.pem is a private key open to every user .*mode 0604/,
    );
  });

  it('says a passphrase-protected key cannot be used (instead of "interrupted or cancelled")', async () => {
    const dir = tempDir();
    await writeCA(dir, ca);
    const w = await writeCert(dir, 'worker-1', worker);
    const encrypted = createPrivateKey(worker.key).export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'secret',
    }) as string;
    writeFileSync(w.keyFile, encrypted, { mode: 0o600 });
    await expect(loadTls(dir, 'worker-1')).rejects.toThrow(
      `${w.keyFile}: the private key is protected by a passphrase, which dist-build cannot ask for`,
    );
  });

  it('rejects names that are not safe file names or collide with key files', async () => {
    const dir = tempDir();
    for (const name of ['../x', 'ca', 'CA', 'worker-1-key', '', '.hidden', 'a/b'])
      await expect(writeCert(dir, name, worker)).rejects.toThrow(CertError);
    expect(existsSync(join(dir, 'ca.pem'))).toBe(false);
  });
});

describe('lazy loading of the certificate generator', () => {
  // Workers, the master and clients only read and check certificates: they must not pay for
  // @peculiar/x509 and reflect-metadata (~16 MB of RSS, ~100 ms), which only generation needs.
  // Jest does not bundle, so this bundles a small program the way scripts/build.mjs bundles
  // dist/cli.js and runs it in a fresh process: reflect-metadata defines Reflect.getMetadata when
  // it is evaluated.
  it('loadTls and certSummary do not evaluate @peculiar/x509; createCA does', async () => {
    const dir = tempDir();
    await writeCA(dir, ca);
    await writeCert(dir, 'worker-1', worker);
    const certs = fileURLToPath(new URL('../../src/cluster/certs.ts', import.meta.url));
    writeFileSync(
      join(dir, 'entry.ts'),
      `import { certSummary, createCA, loadTls, readCA } from ${JSON.stringify(certs)};
const reflect = () => typeof (Reflect as unknown as Record<string, unknown>).getMetadata;
const atStart = reflect();
const tls = await loadTls(${JSON.stringify(dir)}, 'worker-1');
await readCA(${JSON.stringify(dir)});
const role = certSummary(tls.cert).role;
const afterRead = reflect();
await createCA();
console.log(JSON.stringify({ atStart, afterRead, role, afterCreate: reflect() }));
`,
    );
    await build({
      entryPoints: [join(dir, 'entry.ts')],
      outfile: join(dir, 'entry.mjs'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      logLevel: 'silent',
      banner: {
        js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);",
      },
    });
    const out = execFileSync(process.execPath, [join(dir, 'entry.mjs')], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      atStart: 'undefined',
      afterRead: 'undefined',
      role: 'worker',
      afterCreate: 'function',
    });
  }, 30_000);
});

/** Runs `dist-build certs ...` on a fresh program, capturing what it prints. */
async function cli(...args: string[]): Promise<{ out: string; err: string; error?: unknown }> {
  const program = new Command('dist-build').exitOverride();
  registerCerts(program);
  const {
    value: error,
    out,
    err,
  } = await captured(() =>
    program.parseAsync(['certs', ...args], { from: 'user' }).then(
      () => undefined,
      (e: unknown) => e,
    ),
  );
  return error === undefined ? { out, err } : { out, err, error };
}

describe('dist-build certs', () => {
  it('init, issue and show', async () => {
    const dir = join(tempDir(), 'certs');
    const init = await cli('init', '--dir', dir, '--name', 'test CA', '--days', '30');
    expect(init.error).toBeUndefined();
    expect(init.out).toContain(`wrote ${join(dir, 'ca.pem')}`);
    expect(init.out).toContain(`wrote ${join(dir, 'ca-key.pem')}`);
    expect(init.out).toContain(`dist-build certs issue --name master --role master --dir ${dir}`);
    expect(certSummary(readFileSync(join(dir, 'ca.pem'), 'utf8')).subject).toBe(
      'CN=test CA, O=dist-build',
    );

    const again = await cli('init', '--dir', dir);
    expect(again.error).toBeInstanceOf(CertError);
    expect((again.error as Error).message).toMatch(/already exists.*--force/);

    const issue = await cli(
      'issue',
      '--name',
      'worker-1',
      '--host',
      '10.0.0.7',
      '--host',
      'a.example,b.example',
      '--dir',
      dir,
    );
    expect(issue.error).toBeUndefined();
    expect(issue.out).toContain(`wrote ${join(dir, 'worker-1.pem')}`);
    expect(issue.out).toContain(`wrote ${join(dir, 'worker-1-key.pem')}`);
    expect(issue.out).toMatch(/shortened to end with the CA/); // 90 days > the CA's 30
    const s = certSummary(readFileSync(join(dir, 'worker-1.pem'), 'utf8'));
    expect(s.role).toBe('worker');
    expect(s.hosts).toEqual(expect.arrayContaining(['10.0.0.7', 'a.example', 'b.example']));
    expect(mode(join(dir, 'worker-1-key.pem'))).toBe(0o600);

    expect((await cli('issue', '--name', 'master', '--role', 'master', '--dir', dir)).error).toBe(
      undefined,
    );
    expect(await loadTls(dir, 'master')).toMatchObject({
      ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    });

    const show = await cli('show', '--dir', dir);
    expect(show.error).toBeUndefined();
    expect(show.out).toMatch(/^ca \(/);
    expect(show.out).toMatch(/master \(.*\n.*OU=master\n\s+role:\s+master/);
    expect(show.out).toMatch(
      /worker-1 \(.*\n(.*\n){3}.*fingerprint: SHA256 [0-9A-F:]{95}\n.*10\.0\.0\.7/,
    );
    const one = await cli('show', 'worker-1', '--dir', dir);
    expect(one.out).toMatch(/^worker-1 \(/);
    expect(one.out).not.toContain('master');
  });

  it('reports bad flags and missing files cleanly', async () => {
    const dir = tempDir();
    const noCa = await cli('issue', '--name', 'w1', '--dir', dir);
    expect(noCa.error).toBeInstanceOf(CertError);
    expect((noCa.error as Error).message).toMatch(/ca\.pem not found: .*dist-build certs init/);
    expect((await cli('issue', '--name', '../evil', '--dir', dir)).error).toBeInstanceOf(
      UsageError,
    );
    expect((await cli('issue', '--name', 'ca', '--dir', dir)).error).toBeInstanceOf(UsageError);
    expect((await cli('init', '--days', '0', '--dir', dir)).error).toBeInstanceOf(UsageError);
    expect((await cli('issue', '--name', 'w', '--role', 'boss')).error).toBeInstanceOf(
      CommanderError,
    );
    expect((await cli('issue')).error).toBeInstanceOf(CommanderError); // --name is required
    const show = await cli('show', '--dir', dir);
    expect((show.error as Error).message).toMatch(/ca\.pem not found/);
  });
});
