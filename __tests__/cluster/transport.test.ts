import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { parseConfig } from '../../src/config/load.js';
import { configDigest, definitionDigest } from '../../src/cluster/definition.js';
import {
  checkSecurity,
  failStream,
  formatAddress,
  grpcTarget,
  isLoopback,
  parseAddress,
  AddressError,
  SecurityError,
} from '../../src/cluster/transport.js';

describe('addresses', () => {
  test.each([
    ['tcp://127.0.0.1:12345', { kind: 'tcp', host: '127.0.0.1', port: 12345 }, '127.0.0.1:12345'],
    ['tcp://[::1]:80', { kind: 'tcp', host: '::1', port: 80 }, '[::1]:80'],
    [
      'tcp://build-7.internal:0',
      { kind: 'tcp', host: 'build-7.internal', port: 0 },
      'build-7.internal:0',
    ],
    ['master:9000', { kind: 'tcp', host: 'master', port: 9000 }, 'master:9000'],
    ['unix:///run/db.sock', { kind: 'unix', path: '/run/db.sock' }, 'unix:///run/db.sock'],
  ])('%s', (text, parsed, target) => {
    const a = parseAddress(text);
    expect(a).toEqual(parsed);
    expect(grpcTarget(a)).toBe(target);
    expect(parseAddress(formatAddress(a))).toEqual(a);
  });

  test.each(['unix:rel.sock', 'unix://rel.sock', 'unix:./d/rel.sock'])(
    'a relative unix socket path (%s) is taken from the current directory',
    (text) => {
      const a = parseAddress(text);
      expect(a).toEqual({
        kind: 'unix',
        path: join(process.cwd(), text.replace(/^unix:(\/\/)?/, '')),
      });
      expect(grpcTarget(a)).toBe(`unix://${a.kind === 'unix' ? a.path : ''}`);
    },
  );

  test.each(['', 'tcp://host', 'http://x:1', 'tcp://x:99999', 'unix://'])('rejects %j', (text) => {
    expect(() => parseAddress(text)).toThrow(AddressError);
  });

  test('loopback', () => {
    expect(isLoopback(parseAddress('tcp://127.0.0.5:1'))).toBe(true);
    expect(isLoopback(parseAddress('tcp://localhost:1'))).toBe(true);
    expect(isLoopback(parseAddress('unix:///x.sock'))).toBe(true);
    expect(isLoopback(parseAddress('tcp://10.0.0.1:1'))).toBe(false);
  });
});

describe('security rules', () => {
  const tls = { ca: 'x', cert: 'y', key: 'z' };
  test('TCP needs TLS unless --insecure, even on loopback', () => {
    expect(() => checkSecurity(parseAddress('tcp://127.0.0.1:1'), {}, 'listening on')).toThrow(
      /TCP needs mutual TLS: give --certs DIR .* or --insecure/,
    );
    expect(() => checkSecurity(parseAddress('tcp://10.1.2.3:1'), {}, 'connecting to')).toThrow(
      SecurityError,
    );
    expect(() => checkSecurity(parseAddress('tcp://10.1.2.3:1'), { tls }, 'x')).not.toThrow();
    expect(() =>
      checkSecurity(parseAddress('tcp://127.0.0.1:1'), { insecure: true }, 'x'),
    ).not.toThrow();
  });
  test('a unix socket may be plaintext', () => {
    expect(() => checkSecurity(parseAddress('unix:///x.sock'), {}, 'x')).not.toThrow();
  });
});

describe('definition digest', () => {
  const base = `version: 1
invocations:
  a:
    run: make a
    inputs: [src/**]
    outputs: [out/a]
    estimate: 3
`;
  const digestOf = (text: string) =>
    definitionDigest(parseConfig(text, '/r/dist-build.yml').invocations[0]!);

  test('covers what runs, not hints', () => {
    const d = digestOf(base);
    expect(d).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digestOf(base.replace('estimate: 3', 'estimate: 9'))).toBe(d);
    expect(digestOf(base.replace('make a', 'make b'))).not.toBe(d);
    expect(digestOf(base.replace('out/a', 'out/b'))).not.toBe(d);
    expect(digestOf(base + '    env: { X: "1" }\n')).not.toBe(d);
    expect(digestOf(base + '    timeout: 5m\n')).not.toBe(d);
  });

  test('config digest follows its invocations', () => {
    const c = (t: string) => configDigest(parseConfig(t, '/r/dist-build.yml'));
    expect(c(base)).toBe(c(base));
    expect(c(base.replace('make a', 'make z'))).not.toBe(c(base));
  });
});

describe('failStream', () => {
  // A loopback server in this process with one server-streaming and one bidirectional method
  // whose handlers write `n` messages, then fail the call. Raw bytes, no protobuf.
  const raw = (b: Buffer) => b;
  const method = (path: string, requestStream: boolean) => ({
    path,
    requestStream,
    responseStream: true,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  });
  const service = { Down: method('/t.T/Down', false), Both: method('/t.T/Both', true) };
  let server: grpc.Server;
  let client: grpc.Client &
    Record<string, (...args: unknown[]) => grpc.ClientReadableStream<Buffer>>;

  beforeAll(async () => {
    server = new grpc.Server();
    const handler = (
      c: grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>,
    ) => {
      const n = 'request' in c && c.request ? c.request.length : 3;
      for (let i = 0; i < n; i++) c.write(Buffer.alloc(64 * 1024, i));
      setImmediate(() => failStream(c, grpc.status.DATA_LOSS, `failed after ${n}`));
    };
    server.addService(service, { Down: handler, Both: handler });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const Client = grpc.makeGenericClientConstructor(service, 't');
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as typeof client;
  });
  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  /** Bytes received and the final status; a call that never ends fails on its deadline. */
  async function outcome(call: grpc.ClientReadableStream<Buffer>) {
    let bytes = 0;
    call.on('data', (d: Buffer) => (bytes += d.length));
    call.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((r) => call.on('status', r));
    return { bytes, code: status.code, details: status.details };
  }
  const deadline = () => ({ deadline: Date.now() + 5000 });

  test.each([0, 1, 40])(
    'a server-streaming call gets the messages written before, then the status (%i x 64 KiB)',
    async (n) => {
      const call = client.Down(Buffer.alloc(n), deadline());
      expect(await outcome(call)).toEqual({
        bytes: n * 64 * 1024,
        code: grpc.status.DATA_LOSS,
        details: `failed after ${n}`,
      });
    },
  );

  test('a bidirectional call gets the status too', async () => {
    const call = client.Both(deadline()) as unknown as grpc.ClientDuplexStream<Buffer, Buffer>;
    const result = outcome(call);
    expect(await result).toEqual({
      bytes: 3 * 64 * 1024,
      code: grpc.status.DATA_LOSS,
      details: 'failed after 3',
    });
    call.end();
  });
});
