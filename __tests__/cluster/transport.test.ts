import { parseConfig } from '../../src/config/load.js';
import { configDigest, definitionDigest } from '../../src/cluster/definition.js';
import {
  checkSecurity,
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
