// Certificate generation for certs.ts: builds and signs certificates with @peculiar/x509
// (X509CertificateGenerator and its extension classes) and node's WebCrypto; node:crypto only
// exports keys (PKCS#8 PEM, SPKI DER). certs.ts loads this module with `await import()` only when
// it generates certificates, so the processes that just read and check them (workers, the master,
// clients) never evaluate @peculiar/x509 and reflect-metadata (~16 MB, ~100 ms). Everything here
// gets inputs certs.ts has already validated.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, randomBytes } from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import type { CertRole, KeyPair } from './certs.js';

const webCrypto: webcrypto.Crypto = globalThis.crypto;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ORGANIZATION = 'dist-build';
// @peculiar/x509 declares its own (DOM) Crypto type; node's webcrypto object is the same thing.
type X509Crypto = Parameters<typeof x509.X509Certificate.prototype.verify>[1];
const x509Crypto = webCrypto as unknown as X509Crypto;
type X509SigningKey = Extract<
  Parameters<typeof x509.X509CertificateGenerator.create>[0],
  { signingKey: unknown }
>['signingKey'];

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

/** A SubjectAltName entry: IP addresses as IP SANs, everything else DNS. */
export interface AltName {
  type: 'dns' | 'ip';
  value: string;
}

/** A CA certificate to create, already validated by certs.ts. */
export interface CAPlan {
  name: string;
  notBefore: Date;
  notAfter: Date;
}

/** A leaf certificate to issue, already validated by certs.ts (dates, SANs, name and role). */
export interface LeafPlan {
  name: string;
  role: CertRole;
  altNames: AltName[];
  notBefore: Date;
  notAfter: Date;
}

/** 16 random bytes as hex, positive (top bit clear) and exactly 16 bytes long (no zero lead). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f || 0x01;
  return b.toString('hex');
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

export interface GeneratedKeys {
  privateKey: webcrypto.CryptoKey;
  keyPem: string;
  publicKey: x509.PublicKey;
  /** Hex SubjectKeyIdentifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the public key bits). */
  keyId: string;
}

/** A fresh ECDSA P-256 key pair (WebCrypto, on libuv's thread pool). */
export async function generateKeys(): Promise<GeneratedKeys> {
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

/**
 * A CA ready to sign: WebCrypto signing key, subject Name, AuthorityKeyIdentifier for its leaves,
 * and the SubjectAltName extensions built so far (by host list).
 */
export interface SigningCA {
  key: webcrypto.CryptoKey;
  subject: x509.Name;
  authorityKeyId: x509.AuthorityKeyIdentifierExtension;
  altNames: Map<string, x509.SubjectAlternativeNameExtension>;
}

function signer(key: webcrypto.CryptoKey, subject: x509.Name, keyId: string): SigningCA {
  const authorityKeyId = new x509.AuthorityKeyIdentifierExtension(keyId, false);
  return { key, subject, authorityKeyId, altNames: new Map() };
}

/**
 * A signer for an existing CA whose certificate and key certs.ts has checked (a CA certificate,
 * an ECDSA P-256 key that belongs to it).
 */
export async function signingCA(certPem: string, keyObject: KeyObject): Promise<SigningCA> {
  const cert = new x509.X509Certificate(certPem);
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await webCrypto.subtle.importKey('pkcs8', der, KEY_ALG, false, ['sign']);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const keyId =
    ski ?? Buffer.from(await cert.publicKey.getKeyIdentifier(x509Crypto)).toString('hex');
  return signer(key, cert.subjectName, keyId);
}

/** A self-signed CA (ECDSA P-256, CA:true critical, keyCertSign|cRLSign) and its signer. */
export async function newCA(
  plan: CAPlan,
  pregenerated?: Promise<GeneratedKeys>,
): Promise<{ pair: KeyPair; signer: SigningCA }> {
  const keys = await (pregenerated ?? generateKeys());
  const subject = dn([
    ['CN', plan.name],
    ['O', ORGANIZATION],
  ]);
  const cert = await signCertificate({
    issuer: subject,
    subject,
    notBefore: plan.notBefore,
    notAfter: plan.notAfter,
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
    signer: signer(keys.privateKey, subject, keys.keyId),
  };
}

/** A leaf certificate (serverAuth + clientAuth) signed by `ca`. */
export async function issueLeaf(
  ca: SigningCA,
  plan: LeafPlan,
  pregenerated?: Promise<GeneratedKeys>,
): Promise<KeyPair> {
  const sanKey = JSON.stringify(plan.altNames);
  let san = ca.altNames.get(sanKey);
  if (!san)
    ca.altNames.set(sanKey, (san = new x509.SubjectAlternativeNameExtension(plan.altNames, false)));
  const keys = await (pregenerated ?? generateKeys());
  const cert = await signCertificate({
    issuer: ca.subject,
    subject: dn([
      ['CN', plan.name],
      ['O', ORGANIZATION],
      ['OU', plan.role],
    ]),
    notBefore: plan.notBefore,
    notAfter: plan.notAfter,
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

/**
 * One CA and one leaf per plan. All key pairs are generated at once (WebCrypto runs them on
 * libuv's thread pool); the CA's CryptoKey signs every leaf.
 */
export async function newCluster(
  caPlan: CAPlan,
  leaves: LeafPlan[],
): Promise<{ ca: KeyPair; leaves: KeyPair[] }> {
  const leafKeys = leaves.map(() => generateKeys());
  leafKeys.forEach((p) => p.catch(() => {})); // rejections surface through issueLeaf
  const { pair: ca, signer: caSigner } = await newCA(caPlan);
  const pairs = await Promise.all(leaves.map((plan, i) => issueLeaf(caSigner, plan, leafKeys[i])));
  return { ca, leaves: pairs };
}
