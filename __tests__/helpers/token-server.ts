/**
 * A small token server for the test registry's token auth (see registry.ts): checks basic
 * credentials and issues ES256 JWTs whose `x5c` header carries a self-signed certificate that is
 * the registry's `rootcertbundle`.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA } from '../../src/cluster/certs.js';

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token` */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the signing certificate (the registry's rootcertbundle). */
  rootCertBundle: string;
  /** Tokens issued / requests refused so far. */
  issued: number;
  refused: number;
  /** Scopes asked for, in order. */
  scopes: string[];
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * A token server for `users` (name -> password): basic credentials required (anonymous and wrong
 * ones get 401); grants whatever repository actions are asked for (`pullOnly` users: pull only).
 */
export async function startTokenServer(
  users: Record<string, string>,
  opts: { pullOnly?: readonly string[] } = {},
): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dist-build-token-'));
  const ca = await createCA({ name: 'dist-build test token signer', days: 2 });
  const bundle = join(dir, 'bundle.pem');
  await writeFile(bundle, ca.cert);
  const key: KeyObject = createPrivateKey(ca.key);
  const der = ca.cert.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const service = 'test-registry';
  const issuer = 'test-issuer';
  const state = { issued: 0, refused: 0, scopes: [] as string[] };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const m = /^Basic (.+)$/.exec(auth);
    const [user, ...rest] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(':') : [];
    const ok = url.pathname === '/token' && user !== undefined && users[user] === rest.join(':');
    if (!ok) {
      state.refused++;
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Basic realm="test"',
      });
      res.end(JSON.stringify({ details: 'bad credentials' }));
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    state.scopes.push(...scopes);
    const access = scopes
      .map((s) => /^repository:(.+):([a-z,*]+)$/.exec(s))
      .filter((x): x is RegExpExecArray => x !== null)
      .map((x) => ({
        type: 'repository',
        name: x[1]!,
        // A read-only account: pull, whatever it asks for.
        actions: x[2]!.split(',').filter((a) => a === 'pull' || !opts.pullOnly?.includes(user!)),
      }));
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [der] };
    const claims = {
      iss: issuer,
      sub: user,
      aud: url.searchParams.get('service') ?? service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${b64url(signature)}`;
    state.issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: bundle,
    get issued() {
      return state.issued;
    },
    get refused() {
      return state.refused;
    },
    get scopes() {
      return state.scopes;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
