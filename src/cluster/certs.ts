// Mutual-TLS certificates for the cluster: one cluster CA signs a certificate for the master, each
// worker and CLI clients. Every member is both a TLS server and a TLS client, so leaf certificates
// carry serverAuth and clientAuth. ECDSA P-256 keys, SHA-256 signatures, PKCS#8 PEM private keys
// (what node:tls and @grpc/grpc-js accept).
//
// Reading and checking certificates (loadTls, certSummary, readCA...) uses node's native
// X509Certificate only. Generating them needs @peculiar/x509 (+ reflect-metadata), ~16 MB of RSS
// and ~100 ms of start-up that every worker, and every command it forks, would pay: it lives in
// ./x509-gen.ts, loaded with `await import()` by createCA, issueCert and ephemeralTls only.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AltName, CAPlan, LeafPlan } from './x509-gen.js';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
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
/** Always in a leaf's SubjectAltName: the cluster runs on one machine in tests and `dist-build run`. */
const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];
const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 86_400_000;
const MAX_DAYS = 36_500;

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

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5): years 1950-9999 only. */
function checkDate(d: Date): void {
  const iso = d.toISOString(); // a RangeError for an invalid Date
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new CertError(`date out of range: ${iso}`);
}

/** RFC 5952 form: lower case, longest zero run compressed ("0:0:0:0:0:0:0:1" -> "::1"). */
function canonicalIPv6(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Splits `hosts` into SubjectAltName entries: IP addresses as IP SANs, everything else DNS. */
function altNames(hosts: string[]): AltName[] {
  const out: AltName[] = [];
  const seen = new Set<string>();
  for (const raw of [...DEFAULT_HOSTS, ...hosts]) {
    let h = raw.trim();
    if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
    const family = isIP(h);
    let entry: AltName;
    if (family === 4) {
      entry = { type: 'ip', value: h.split('.').map(Number).join('.') };
    } else if (family === 6) {
      if (h.includes('%')) throw new CertError(`host "${raw}": IPv6 zone ids cannot be certified`);
      // Canonical compressed form (also turns "::ffff:1.2.3.4" into hex groups).
      entry = { type: 'ip', value: canonicalIPv6(h) };
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

function parseCert(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pemBody(pem, what));
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError(`${what}: cannot parse the certificate: ${(err as Error).message}`);
  }
}

function parseKey(pem: string, what: string): KeyObject {
  // Without a passphrase OpenSSL fails with "interrupted or cancelled", which says nothing.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: *4, *ENCRYPTED/m.test(pem))
    throw new CertError(
      `${what}: the private key is protected by a passphrase, which dist-build cannot ask for: keep it unencrypted and private (mode 0600), e.g. \`openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.plain\``,
    );
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CertError(`${what}: cannot parse the private key: ${(err as Error).message}`);
  }
  return key;
}

/** Throws unless the private key belongs to the certificate. */
function checkKeyMatches(cert: X509Certificate, key: KeyObject, what: string): void {
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) throw new CertError(`${what}: the private key does not belong to the certificate`);
}

const MONTHS = 'JanFebMarAprMayJunJulAugSepOctNovDec';

/** An OpenSSL date as X509Certificate prints it (validFrom, validTo): "Nov 29 10:01:00 2025 GMT". */
function certDate(text: string): Date {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d+)? (\d{4}) GMT$/.exec(text);
  const month = m ? MONTHS.indexOf(m[1]!) / 3 : -1;
  if (!m || !Number.isInteger(month) || month < 0) return new Date(text);
  const d = new Date(0);
  d.setUTCFullYear(Number(m[6]), month, Number(m[2]));
  d.setUTCHours(Number(m[3]), Number(m[4]), Number(m[5]), 0);
  return d;
}

const notBeforeOf = (cert: X509Certificate): Date => certDate(cert.validFrom);
const notAfterOf = (cert: X509Certificate): Date => certDate(cert.validTo);

/**
 * Checks a CA key pair without generating anything: a CA certificate (BasicConstraints CA:true)
 * and an ECDSA P-256 private key that belongs to it. Returns the key and the CA's end of validity.
 */
function checkCA(ca: KeyPair): { key: KeyObject; notAfter: Date } {
  const cert = parseCert(ca.cert, 'CA certificate');
  if (!cert.ca) throw new CertError('CA certificate: not a CA (BasicConstraints CA:true missing)');
  const key = parseKey(ca.key, 'CA private key');
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1')
    throw new CertError('CA private key: expected an ECDSA P-256 key');
  checkKeyMatches(cert, key, 'CA');
  return { key, notAfter: notAfterOf(cert) };
}

/** Creates a self-signed cluster CA (ECDSA P-256, CA:true critical, keyCertSign|cRLSign). */
export async function createCA(opts: { name?: string; days?: number } = {}): Promise<KeyPair> {
  const plan = caPlan(opts);
  return (await (await import('./x509-gen.js')).newCA(plan)).pair;
}

function caPlan(opts: { name?: string; days?: number }): CAPlan {
  const name = opts.name ?? DEFAULT_CA_NAME;
  const days = opts.days ?? DEFAULT_CA_DAYS;
  checkSubjectName(name, 'CA name');
  checkDays(days, 'CA validity');
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + days * DAY_MS);
  checkDate(notBefore);
  checkDate(notAfter);
  return { name, notBefore, notAfter };
}

function checkSubjectName(name: string, what: string): void {
  if (!name.trim() || name.length > 64 || [...name].some((c) => c < ' ' || c === '\x7f'))
    throw new CertError(`${what}: expected 1-64 printable characters, got ${JSON.stringify(name)}`);
}

/** Checks a leaf's options and works out its SANs and validity (never beyond the CA's end). */
function leafPlan(caNotAfter: Date, opts: CertOptions): LeafPlan {
  const { name, role } = opts;
  checkSubjectName(name, 'certificate name');
  if (!CERT_ROLES.includes(role))
    throw new CertError(`invalid role "${role}": expected one of ${CERT_ROLES.join(', ')}`);
  const days = opts.days ?? DEFAULT_CERT_DAYS;
  checkDays(days, 'certificate validity');
  const sans = altNames(opts.hosts ?? []);

  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  let notAfter = opts.notAfter;
  if (!notAfter) {
    if (caNotAfter.getTime() <= now)
      throw new CertError(
        `the CA expired on ${caNotAfter.toISOString()}: create a new one with \`dist-build certs init --force\``,
      );
    // A leaf outliving its CA would fail verification anyway: stop at the CA's end.
    const wanted = (opts.notBefore ? notBefore.getTime() : now) + days * DAY_MS;
    notAfter = new Date(Math.min(wanted, caNotAfter.getTime()));
  }
  if (notAfter.getTime() <= notBefore.getTime())
    throw new CertError(
      `certificate "${name}": notAfter (${notAfter.toISOString()}) is not after notBefore (${notBefore.toISOString()})`,
    );
  checkDate(notBefore);
  checkDate(notAfter);
  return { name, role, altNames: sans, notBefore, notAfter };
}

/** Issues a leaf certificate signed by `ca` (serverAuth + clientAuth; localhost, 127.0.0.1, ::1 + hosts). */
export async function issueCert(ca: KeyPair, opts: CertOptions): Promise<KeyPair> {
  const { key, notAfter } = checkCA(ca);
  const plan = leafPlan(notAfter, opts);
  const gen = await import('./x509-gen.js');
  return gen.issueLeaf(await gen.signingCA(ca.cert, key), plan);
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

/**
 * Writes ca.pem (0644) and ca-key.pem (0600; not with `certOnly`); refuses to replace an existing
 * CA unless `force`.
 */
export async function writeCA(
  dir: string,
  ca: KeyPair,
  opts: { force?: boolean; certOnly?: boolean } = {},
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
  // certOnly: a CA that signs nothing after its creation (`dist-build run`'s) keeps its key in
  // memory; peers need only its certificate.
  if (!opts.certOnly) await writeSecure(keyFile, ca.key, 0o600);
  await writeSecure(certFile, ca.cert, 0o644);
  return { certFile, keyFile };
}

/**
 * Reads a PEM file. A private key (`privateKey`) that every user of the machine may read or change
 * is refused (`certs` writes keys 0600; a copy made with `cp` or a wide umask may not be); the
 * mode is that of the file read (fstat of the open handle). Windows has no such mode bits.
 */
async function readPem(file: string, hint: string, privateKey = false): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CertError(`${file} not found: ${hint}`);
    throw new CertError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const mode = privateKey ? (await fh.stat()).mode & 0o777 : 0;
    if (process.platform !== 'win32' && mode & 0o007)
      throw new CertError(
        `${file} is a private key open to every user of this machine (mode 0${mode.toString(8)}): make it private with \`chmod 600 ${shellWord(file)}\``,
      );
    return await fh.readFile('utf8');
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError(`cannot read ${file}: ${(err as Error).message}`);
  } finally {
    await fh.close();
  }
}

/** A path as one word of a printed command. */
export const shellWord = (path: string): string =>
  /^[\w./-]+$/.test(path) ? path : JSON.stringify(path);

/** ` --dir <dir>` for printed commands; empty for the default directory. */
export function dirFlag(dir: string): string {
  return dir === DEFAULT_CERT_DIR ? '' : ` --dir ${shellWord(dir)}`;
}

function initHint(dir: string): string {
  return `create the cluster CA with \`dist-build certs init${dirFlag(dir)}\``;
}

/** Reads the CA written by writeCA, checking that the key belongs to the certificate. */
export async function readCA(dir: string): Promise<KeyPair> {
  const cert = await readPem(join(dir, CA_CERT_FILE), initHint(dir));
  const key = await readPem(join(dir, CA_KEY_FILE), initHint(dir), true);
  checkCA({ cert, key });
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
  // checkIssued: the issuer name is the CA's subject (and the key identifiers, if any, agree).
  if (!cert.checkIssued(ca)) return false;
  try {
    return cert.verify(ca.publicKey);
  } catch {
    return false;
  }
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
  const key = await readPem(keyFile, issueHint, true);
  const parsed = parseCert(cert, certFile);
  checkKeyMatches(parsed, parseKey(key, keyFile), `${certFile} / ${keyFile}`);
  if (!(await issuedBy(cert, ca)))
    throw new CertError(
      `${certFile} was not issued by the CA in ${join(dir, CA_CERT_FILE)}: ${issueHint}`,
    );
  const now = Date.now();
  const notAfter = notAfterOf(parsed);
  const notBefore = notBeforeOf(parsed);
  if (notAfter.getTime() <= now)
    throw new CertError(
      `${certFile} expired on ${notAfter.toISOString()}: issue a new one with ${issueCmd}`,
    );
  if (notBefore.getTime() > now)
    throw new CertError(
      `${certFile} is not valid before ${notBefore.toISOString()} (check this machine's clock)`,
    );
  return { ca, cert, key };
}

/**
 * One in-memory CA and one certificate per name (role `master` for the name "master", `client`
 * for "client" (`dist-build status` / `logs`), `worker` otherwise), for a cluster that lives only
 * as long as one `dist-build run`.
 */
export async function ephemeralTls(
  names: string[],
): Promise<{ ca: KeyPair; tls: Record<string, TlsFiles> }> {
  const unique = new Set(names);
  if (unique.size !== names.length) throw new CertError('ephemeralTls: duplicate names');
  const caSpec = caPlan({ name: 'dist-build ephemeral CA', days: 7 });
  const leaves = names.map((name) =>
    leafPlan(caSpec.notAfter, {
      name,
      role: name === 'master' || name === 'client' ? name : 'worker',
      days: 7,
    }),
  );
  const { ca, leaves: pairs } = await (await import('./x509-gen.js')).newCluster(caSpec, leaves);
  const tls: Record<string, TlsFiles> = {};
  names.forEach((name, i) => (tls[name] = { ca: ca.cert, ...pairs[i]! }));
  return { ca, tls };
}

/**
 * The attributes of a subject as X509Certificate prints it: one `TYPE=value` per line, values
 * escaped as in RFC 2253 (`\,`, `\+`, `\"`, `\\`...; `\XX` for control characters).
 */
function subjectFields(subject: string): [string, string][] {
  return subject
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => {
      const eq = line.indexOf('=');
      const value = line
        .slice(eq + 1)
        .replace(/\\([0-9A-Fa-f]{2})|\\(.)/g, (_, hex?: string, c?: string) =>
          hex ? String.fromCharCode(parseInt(hex, 16)) : c!,
        );
      return [line.slice(0, eq), value];
    });
}

/**
 * DNS names and IP addresses of X509Certificate's subjectAltName ("DNS:a, IP Address:1.2.3.4";
 * names with commas or quotes are JSON strings). IPv6 addresses in canonical compressed form.
 */
function sanHosts(subjectAltName: string | undefined): string[] {
  const hosts: string[] = [];
  if (!subjectAltName) return hosts;
  const entry = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  for (let m = entry.exec(subjectAltName); m && m[0]; m = entry.exec(subjectAltName)) {
    const type = m[1]!;
    let value = m[2]!;
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    if (type === 'DNS') hosts.push(value);
    else if (type === 'IP Address') hosts.push(isIP(value) === 6 ? canonicalIPv6(value) : value);
  }
  return hosts;
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
  return {
    subject: cert.subject.split('\n').join(', '),
    role: subjectFields(cert.subject).find(([type]) => type === 'OU')?.[1] ?? null,
    notBefore: notBeforeOf(cert),
    notAfter: notAfterOf(cert),
    // Colon-separated upper-case SHA-256 of the DER certificate (as `openssl x509 -fingerprint`).
    fingerprint: cert.fingerprint256,
    hosts: sanHosts(cert.subjectAltName),
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
