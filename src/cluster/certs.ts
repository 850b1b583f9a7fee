// Mutual-TLS certificates for the cluster: one cluster CA signs a certificate for the master, each
// worker and CLI clients. Every member is both a TLS server and a TLS client, so leaf certificates
// carry serverAuth and clientAuth. ECDSA P-256 keys, SHA-256 signatures, PKCS#8 PEM private keys
// (what node:tls and @grpc/grpc-js accept).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, createPrivateKey, createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  cert: string;
  key: string;
}
export type CertRole = 'master' | 'worker' | 'client';
export interface CertOptions {
  name: string;
  role: CertRole;
  hosts?: string[];
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
}
/** PEM contents for a TLS endpoint: `ca` is the cluster CA certificate only (never its key). */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A certificate problem the user can fix (missing files, bad names, wrong CA): no stack trace. */
export class CertError extends Error {
  override name = 'CertError';
}

export const CERT_ROLES: readonly CertRole[] = ['master', 'worker', 'client'];
export const DEFAULT_CERT_DIR = '.dist-build/certs';
export const DEFAULT_CA_NAME = 'dist-build CA';
export const DEFAULT_CA_DAYS = 365;
export const DEFAULT_CERT_DAYS = 90;
/** Certificate names: also file names (`<name>.pem`, `<name>-key.pem`). */
export const CERT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
const ORGANIZATION = 'dist-build';
/** Always in a leaf's SubjectAltName: the cluster runs on one machine in tests and `dist-build run`. */
const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];
const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 86_400_000;
const MAX_DAYS = 36_500;

const webCrypto: webcrypto.Crypto = globalThis.crypto;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
// @peculiar/x509 declares its own (DOM) Crypto type; node's webcrypto object is the same thing.
type X509Crypto = Parameters<typeof x509.X509Certificate.prototype.verify>[1];
const x509Crypto = webCrypto as unknown as X509Crypto;
type X509SigningKey = Extract<
  Parameters<typeof x509.X509CertificateGenerator.create>[0],
  { signingKey: unknown }
>['signingKey'];

/** Throws a CertError unless `name` is usable as a certificate and file name. */
export function checkCertName(name: string): void {
  if (!CERT_NAME_RE.test(name))
    throw new CertError(
      `invalid certificate name "${name}": use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  // `ca` would overwrite the CA files; `<x>-key` would overwrite the key file of `<x>`.
  if (/^ca$/i.test(name) || /-key$/i.test(name))
    throw new CertError(
      `invalid certificate name "${name}": "ca" and names ending in "-key" are reserved for key files`,
    );
}

function checkDays(days: number, what: string): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS)
    throw new CertError(
      `${what}: expected a whole number of days from 1 to ${MAX_DAYS}, got ${days}`,
    );
}

// Certificates are built and signed by @peculiar/x509 (X509CertificateGenerator and its extension
// classes) with node's WebCrypto; node:crypto only exports keys (PKCS#8 PEM, SPKI DER).

/** 16 random bytes as hex, positive (top bit clear) and exactly 16 bytes long (no zero lead). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f || 0x01;
  return b.toString('hex');
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5): years 1950-9999 only. */
function checkDate(d: Date): void {
  const iso = d.toISOString(); // a RangeError for an invalid Date
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new CertError(`date out of range: ${iso}`);
}

/** A subject or issuer Name: one attribute per RDN, UTF8String values (taken verbatim). */
function dn(attrs: [string, string][]): x509.Name {
  return new x509.Name(attrs.map(([type, v]) => ({ [type]: [{ utf8String: v }] })));
}

interface CertSpec {
  issuer: x509.Name;
  subject: x509.Name;
  notBefore: Date;
  notAfter: Date;
  publicKey: x509.PublicKey;
  extensions: x509.Extension[];
  signingKey: webcrypto.CryptoKey;
}

/** An ECDSA P-256 / SHA-256 certificate with a random positive serial, as PEM. */
async function signCertificate(spec: CertSpec): Promise<string> {
  checkDate(spec.notBefore);
  checkDate(spec.notAfter);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      issuer: spec.issuer,
      subject: spec.subject,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: spec.publicKey,
      signingKey: spec.signingKey as X509SigningKey,
      signingAlgorithm: SIGN_ALG,
      extensions: spec.extensions,
    },
    x509Crypto,
  );
  return `${cert.toString('pem')}\n`;
}

interface GeneratedKeys {
  privateKey: webcrypto.CryptoKey;
  keyPem: string;
  publicKey: x509.PublicKey;
  /** Hex SubjectKeyIdentifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the public key bits). */
  keyId: string;
}

async function generateKeys(): Promise<GeneratedKeys> {
  const keys = await webCrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify']);
  const publicKey = new x509.PublicKey(
    KeyObject.from(keys.publicKey).export({ type: 'spki', format: 'der' }),
  );
  return {
    privateKey: keys.privateKey,
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey,
    keyId: Buffer.from(await publicKey.getKeyIdentifier(x509Crypto)).toString('hex'),
  };
}

/** Splits `hosts` into SubjectAltName entries: IP addresses as IP SANs, everything else DNS. */
function altNames(hosts: string[]): { type: 'dns' | 'ip'; value: string }[] {
  const out: { type: 'dns' | 'ip'; value: string }[] = [];
  const seen = new Set<string>();
  for (const raw of [...DEFAULT_HOSTS, ...hosts]) {
    let h = raw.trim();
    if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
    const family = isIP(h);
    let entry: { type: 'dns' | 'ip'; value: string };
    if (family === 4) {
      entry = { type: 'ip', value: h.split('.').map(Number).join('.') };
    } else if (family === 6) {
      if (h.includes('%')) throw new CertError(`host "${raw}": IPv6 zone ids cannot be certified`);
      // Canonical compressed form (also turns "::ffff:1.2.3.4" into hex groups).
      entry = { type: 'ip', value: new URL(`http://[${h}]/`).hostname.slice(1, -1) };
    } else {
      const dns = h.toLowerCase().replace(/\.$/, '');
      const label = '[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?';
      if (dns.length > 253 || !new RegExp(`^(\\*\\.)?${label}(\\.${label})*$`).test(dns))
        throw new CertError(
          `host "${raw}": expected a DNS name (e.g. build-1.internal) or an IP address`,
        );
      entry = { type: 'dns', value: dns };
    }
    const k = `${entry.type}:${entry.value}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(entry);
    }
  }
  return out;
}

function pemBody(pem: string, what: string): string {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem))
    throw new CertError(`${what}: not a PEM certificate (no "BEGIN CERTIFICATE" line)`);
  return pem;
}

function parseCert(pem: string, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pemBody(pem, what));
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError(`${what}: cannot parse the certificate: ${(err as Error).message}`);
  }
}

function parseKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CertError(`${what}: cannot parse the private key: ${(err as Error).message}`);
  }
  return key;
}

/** Throws unless the private key belongs to the certificate. */
function checkKeyMatches(cert: x509.X509Certificate, key: KeyObject, what: string): void {
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!Buffer.from(cert.publicKey.rawData).equals(fromKey))
    throw new CertError(`${what}: the private key does not belong to the certificate`);
}

// Extensions that are the same in every certificate of a kind. The generator only reads their
// DER (rawData), so one instance serves every certificate.
// pathlen 0: the CA signs leaf certificates only, never another CA.
const CA_BASIC_CONSTRAINTS = new x509.BasicConstraintsExtension(true, 0, true);
const CA_KEY_USAGE = new x509.KeyUsagesExtension(
  x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
  true,
);
const LEAF_BASIC_CONSTRAINTS = new x509.BasicConstraintsExtension(false, undefined, true);
const LEAF_KEY_USAGE = new x509.KeyUsagesExtension(
  x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
  true,
);
const LEAF_EXT_KEY_USAGE = new x509.ExtendedKeyUsageExtension(
  [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  false,
);

/**
 * A CA ready to sign: WebCrypto signing key, subject Name, AuthorityKeyIdentifier for its leaves,
 * end of validity, and the SubjectAltName extensions built so far (by host list).
 */
interface SigningCA {
  key: webcrypto.CryptoKey;
  subject: x509.Name;
  authorityKeyId: x509.AuthorityKeyIdentifierExtension;
  notAfter: Date;
  altNames: Map<string, x509.SubjectAlternativeNameExtension>;
}

function signer(
  key: webcrypto.CryptoKey,
  subject: x509.Name,
  keyId: string,
  notAfter: Date,
): SigningCA {
  const authorityKeyId = new x509.AuthorityKeyIdentifierExtension(keyId, false);
  return { key, subject, authorityKeyId, notAfter, altNames: new Map() };
}

async function signingCA(ca: KeyPair): Promise<SigningCA> {
  const cert = parseCert(ca.cert, 'CA certificate');
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CertError('CA certificate: not a CA (BasicConstraints CA:true missing)');
  const keyObject = parseKey(ca.key, 'CA private key');
  const details = keyObject.asymmetricKeyDetails;
  if (keyObject.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1')
    throw new CertError('CA private key: expected an ECDSA P-256 key');
  checkKeyMatches(cert, keyObject, 'CA');
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await webCrypto.subtle.importKey('pkcs8', der, KEY_ALG, false, ['sign']);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const keyId =
    ski ?? Buffer.from(await cert.publicKey.getKeyIdentifier(x509Crypto)).toString('hex');
  return signer(key, cert.subjectName, keyId, cert.notAfter);
}

/** Creates a self-signed cluster CA (ECDSA P-256, CA:true critical, keyCertSign|cRLSign). */
export async function createCA(opts: { name?: string; days?: number } = {}): Promise<KeyPair> {
  return (await newCA(opts)).pair;
}

async function newCA(
  opts: { name?: string; days?: number },
  pregenerated?: Promise<GeneratedKeys>,
): Promise<{ pair: KeyPair; signer: SigningCA }> {
  const name = opts.name ?? DEFAULT_CA_NAME;
  const days = opts.days ?? DEFAULT_CA_DAYS;
  checkSubjectName(name, 'CA name');
  checkDays(days, 'CA validity');
  const keys = await (pregenerated ?? generateKeys());
  const now = Date.now();
  const subject = dn([
    ['CN', name],
    ['O', ORGANIZATION],
  ]);
  const notAfter = new Date(now + days * DAY_MS);
  const cert = await signCertificate({
    issuer: subject,
    subject,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      CA_BASIC_CONSTRAINTS,
      CA_KEY_USAGE,
      new x509.SubjectKeyIdentifierExtension(keys.keyId, false),
    ],
  });
  return {
    pair: { cert, key: keys.keyPem },
    signer: signer(keys.privateKey, subject, keys.keyId, notAfter),
  };
}

function checkSubjectName(name: string, what: string): void {
  if (!name.trim() || name.length > 64 || [...name].some((c) => c < ' ' || c === '\x7f'))
    throw new CertError(`${what}: expected 1-64 printable characters, got ${JSON.stringify(name)}`);
}

async function issueWith(
  ca: SigningCA,
  opts: CertOptions,
  pregenerated?: Promise<GeneratedKeys>,
): Promise<KeyPair> {
  const { name, role } = opts;
  checkSubjectName(name, 'certificate name');
  if (!CERT_ROLES.includes(role))
    throw new CertError(`invalid role "${role}": expected one of ${CERT_ROLES.join(', ')}`);
  const days = opts.days ?? DEFAULT_CERT_DAYS;
  checkDays(days, 'certificate validity');
  const sans = altNames(opts.hosts ?? []);
  const sanKey = JSON.stringify(sans);
  let san = ca.altNames.get(sanKey);
  if (!san) ca.altNames.set(sanKey, (san = new x509.SubjectAlternativeNameExtension(sans, false)));

  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  let notAfter = opts.notAfter;
  if (!notAfter) {
    if (ca.notAfter.getTime() <= now)
      throw new CertError(
        `the CA expired on ${ca.notAfter.toISOString()}: create a new one with \`dist-build certs init --force\``,
      );
    // A leaf outliving its CA would fail verification anyway: stop at the CA's end.
    const wanted = (opts.notBefore ? notBefore.getTime() : now) + days * DAY_MS;
    notAfter = new Date(Math.min(wanted, ca.notAfter.getTime()));
  }
  if (notAfter.getTime() <= notBefore.getTime())
    throw new CertError(
      `certificate "${name}": notAfter (${notAfter.toISOString()}) is not after notBefore (${notBefore.toISOString()})`,
    );

  const keys = await (pregenerated ?? generateKeys());
  const cert = await signCertificate({
    issuer: ca.subject,
    subject: dn([
      ['CN', name],
      ['O', ORGANIZATION],
      ['OU', role],
    ]),
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      LEAF_BASIC_CONSTRAINTS,
      LEAF_KEY_USAGE,
      LEAF_EXT_KEY_USAGE,
      san,
      ca.authorityKeyId,
      new x509.SubjectKeyIdentifierExtension(keys.keyId, false),
    ],
  });
  return { cert, key: keys.keyPem };
}

/** Issues a leaf certificate signed by `ca` (serverAuth + clientAuth; localhost, 127.0.0.1, ::1 + hosts). */
export async function issueCert(ca: KeyPair, opts: CertOptions): Promise<KeyPair> {
  return issueWith(await signingCA(ca), opts);
}

/**
 * Writes `data` to `file` with `mode` from the first byte on: a fresh temporary file opened with
 * that mode (O_EXCL), then renamed over `file`. An existing file's wider mode is never inherited.
 */
async function writeSecure(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.chmod(mode); // exact mode whatever the umask
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function makeDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Writes ca.pem (0644) and ca-key.pem (0600); refuses to replace an existing CA unless `force`. */
export async function writeCA(
  dir: string,
  ca: KeyPair,
  opts: { force?: boolean } = {},
): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  if (!opts.force) {
    for (const f of [certFile, keyFile])
      if (await exists(f))
        throw new CertError(
          `${f} already exists: refusing to replace the cluster CA (every certificate it signed would stop working); use --force to replace it`,
        );
  }
  await makeDir(dir);
  await writeSecure(keyFile, ca.key, 0o600);
  await writeSecure(certFile, ca.cert, 0o644);
  return { certFile, keyFile };
}

async function readPem(file: string, hint: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CertError(`${file} not found: ${hint}`);
    throw new CertError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** ` --dir <dir>` for printed commands; empty for the default directory. */
export function dirFlag(dir: string): string {
  return dir === DEFAULT_CERT_DIR
    ? ''
    : ` --dir ${/^[\w./-]+$/.test(dir) ? dir : JSON.stringify(dir)}`;
}

function initHint(dir: string): string {
  return `create the cluster CA with \`dist-build certs init${dirFlag(dir)}\``;
}

/** Reads the CA written by writeCA, checking that the key belongs to the certificate. */
export async function readCA(dir: string): Promise<KeyPair> {
  const cert = await readPem(join(dir, CA_CERT_FILE), initHint(dir));
  const key = await readPem(join(dir, CA_KEY_FILE), initHint(dir));
  await signingCA({ cert, key });
  return { cert, key };
}

/** Writes `<name>.pem` (0644) and `<name>-key.pem` (0600), replacing an earlier certificate. */
export async function writeCert(
  dir: string,
  name: string,
  pair: KeyPair,
): Promise<{ certFile: string; keyFile: string }> {
  checkCertName(name);
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  await makeDir(dir);
  await writeSecure(keyFile, pair.key, 0o600);
  await writeSecure(certFile, pair.cert, 0o644);
  return { certFile, keyFile };
}

/** Whether `cert` is signed by `ca` (issuer name and signature). */
export async function issuedBy(certPemText: string, caPemText: string): Promise<boolean> {
  const cert = parseCert(certPemText, 'certificate');
  const ca = parseCert(caPemText, 'CA certificate');
  if (cert.issuer !== ca.subject) return false;
  return cert.verify({ publicKey: ca, signatureOnly: true }, x509Crypto);
}

/**
 * Reads ca.pem, `<name>.pem` and `<name>-key.pem` from `dir` and checks that they fit together
 * (key matches, signed by the CA, within validity), so a bad setup fails here with a clear
 * message instead of as a TLS handshake error on the other side.
 */
export async function loadTls(dir: string, name: string): Promise<TlsFiles> {
  checkCertName(name);
  const issueCmd = `\`dist-build certs issue --name ${name}${dirFlag(dir)}\``;
  const issueHint = `issue it with ${issueCmd}`;
  const ca = await readPem(join(dir, CA_CERT_FILE), initHint(dir));
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  const cert = await readPem(certFile, issueHint);
  const key = await readPem(keyFile, issueHint);
  const parsed = parseCert(cert, certFile);
  checkKeyMatches(parsed, parseKey(key, keyFile), `${certFile} / ${keyFile}`);
  if (!(await issuedBy(cert, ca)))
    throw new CertError(
      `${certFile} was not issued by the CA in ${join(dir, CA_CERT_FILE)}: ${issueHint}`,
    );
  const now = Date.now();
  if (parsed.notAfter.getTime() <= now)
    throw new CertError(
      `${certFile} expired on ${parsed.notAfter.toISOString()}: issue a new one with ${issueCmd}`,
    );
  if (parsed.notBefore.getTime() > now)
    throw new CertError(
      `${certFile} is not valid before ${parsed.notBefore.toISOString()} (check this machine's clock)`,
    );
  return { ca, cert, key };
}

/**
 * One in-memory CA and one certificate per name (role `master` for the name "master", `worker`
 * otherwise), for a cluster that lives only as long as one `dist-build run`.
 */
export async function ephemeralTls(
  names: string[],
): Promise<{ ca: KeyPair; tls: Record<string, TlsFiles> }> {
  const unique = new Set(names);
  if (unique.size !== names.length) throw new CertError('ephemeralTls: duplicate names');
  // All key pairs are generated at once (WebCrypto runs them on libuv's thread pool); the CA's
  // CryptoKey signs every leaf.
  const leafKeys = names.map(() => generateKeys());
  leafKeys.forEach((p) => p.catch(() => {})); // rejections surface through issueWith
  const { pair: ca, signer } = await newCA({ name: 'dist-build ephemeral CA', days: 7 });
  const pairs = await Promise.all(
    names.map((name, i) =>
      issueWith(
        signer,
        { name, role: name === 'master' ? 'master' : 'worker', days: 7 },
        leafKeys[i],
      ),
    ),
  );
  const tls: Record<string, TlsFiles> = {};
  names.forEach((name, i) => (tls[name] = { ca: ca.cert, ...pairs[i]! }));
  return { ca, tls };
}

/** Colon-separated upper-case SHA-256 of the DER certificate (as `openssl x509 -fingerprint`). */
function fingerprintOf(cert: x509.X509Certificate): string {
  const hex = createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** What a certificate says: subject, role (OU; null for the CA), validity, fingerprint, SANs. */
export function certSummary(pem: string): {
  subject: string;
  role: string | null;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
  hosts: string[];
} {
  const cert = parseCert(pem, 'certificate');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    subject: cert.subject,
    role: cert.subjectName.getField('OU')[0] ?? null,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    fingerprint: fingerprintOf(cert),
    hosts: san
      ? san.names.items.filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value)
      : [],
  };
}

/** Certificate names in `dir` (files `<name>.pem` that have a `<name>-key.pem`), sorted; no CA. */
export async function listCerts(dir: string): Promise<string[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CertError(`${dir} not found: ${initHint(dir)}`);
    throw err;
  }
  const set = new Set(files);
  return files
    .filter((f) => f.endsWith('.pem') && !f.endsWith('-key.pem') && f !== CA_CERT_FILE)
    .map((f) => f.slice(0, -'.pem'.length))
    .filter((n) => CERT_NAME_RE.test(n) && set.has(`${n}-key.pem`))
    .sort();
}
