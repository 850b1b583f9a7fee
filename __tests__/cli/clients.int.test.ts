import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueCert, writeCA, writeCert } from '../../src/cluster/certs.js';
import { Master } from '../../src/cluster/master.js';
import { runCli, stopAll } from '../helpers/processes.js';

// A master that accepts connections and never answers (stopped with SIGSTOP, or hung): the
// kernel completes the TCP handshake, the TLS handshake never ends.
let silent: Server;
const sockets: Socket[] = [];
let address: string;
let certs: string;

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), 'dist-build-clients-'));
  const ca = await createCA();
  await writeCA(certs, ca);
  await writeCert(certs, 'client', await issueCert(ca, { name: 'client', role: 'client' }));
  silent = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  address = `tcp://127.0.0.1:${(silent.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await stopAll();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  rmSync(certs, { recursive: true, force: true });
});

test.each([
  ['status', []],
  ['logs', ['gen']],
  ['logs', ['gen', '--follow']],
])(
  '%s %s against a master that never answers: one line and exit 1 after 10 s, not a hang',
  async (cmd, args) => {
    const started = Date.now();
    const r = await runCli([cmd, ...args, '--master', address, '--certs', certs], {
      timeoutMs: 40_000,
    });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `dist-build: ${cmd}${cmd === 'logs' ? ' gen' : ''}: cannot reach the master at ${address}: no answer within 10s\n`,
    );
    expect(Date.now() - started).toBeLessThan(20_000);
  },
  60_000,
);

test.each([['status'], ['logs']])(
  '%s against a master of another CA says so, not OpenSSL\'s "self-signed certificate in certificate chain" alone',
  async (cmd) => {
    const other = await createCA({ name: 'other CA' });
    const m = await issueCert(other, { name: 'master', role: 'master' });
    const master = new Master({
      listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
      security: { tls: { ca: other.cert, ...m } },
      log: () => undefined,
    });
    await master.start();
    try {
      const port = (master.addresses[0] as { port: number }).port;
      const at = `tcp://127.0.0.1:${port}`;
      const r = await runCli(
        [cmd, ...(cmd === 'logs' ? ['gen'] : []), '--master', at, '--certs', certs],
        { timeoutMs: 30_000 },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `dist-build: ${cmd}${cmd === 'logs' ? ' gen' : ''}: cannot reach the master at ${at}: the master's certificate is not from this client's CA (--certs: a master set up with another \`dist-build certs init\`?): self-signed certificate in certificate chain\n`,
      );
    } finally {
      await master.stop();
    }
  },
  40_000,
);

test('status --insecure against a master with TLS: a hint at --certs, not only "Failed to connect (date)"', async () => {
  const ca = await createCA();
  const m = await issueCert(ca, { name: 'master', role: 'master' });
  const master = new Master({
    listen: [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
    security: { tls: { ca: ca.cert, ...m } },
    log: () => undefined,
  });
  await master.start();
  try {
    const at = `tcp://127.0.0.1:${(master.addresses[0] as { port: number }).port}`;
    const r = await runCli(['status', '--master', at, '--insecure'], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^dist-build: status: cannot reach the master at ${at}: the connection was closed before it was set up \\(a master that uses TLS\\? then give --certs too\\): Failed to connect \\(.*\\)\\n$`,
      ),
    );
  } finally {
    await master.stop();
  }
}, 40_000);
