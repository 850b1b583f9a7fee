import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);

// src/cluster/x509-gen.ts
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { KeyObject, randomBytes } from "node:crypto";
var webCrypto = globalThis.crypto;
var KEY_ALG = { name: "ECDSA", namedCurve: "P-256" };
var SIGN_ALG = { name: "ECDSA", hash: "SHA-256" };
var ORGANIZATION = "dist-build";
var x509Crypto = webCrypto;
var CA_BASIC_CONSTRAINTS = new x509.BasicConstraintsExtension(true, 0, true);
var CA_KEY_USAGE = new x509.KeyUsagesExtension(
  x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
  true
);
var LEAF_BASIC_CONSTRAINTS = new x509.BasicConstraintsExtension(false, void 0, true);
var LEAF_KEY_USAGE = new x509.KeyUsagesExtension(
  x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
  true
);
var LEAF_EXT_KEY_USAGE = new x509.ExtendedKeyUsageExtension(
  [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  false
);
function randomSerial() {
  const b = randomBytes(16);
  b[0] = b[0] & 127 || 1;
  return b.toString("hex");
}
function dn(attrs) {
  return new x509.Name(attrs.map(([type, v]) => ({ [type]: [{ utf8String: v }] })));
}
async function signCertificate(spec) {
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      issuer: spec.issuer,
      subject: spec.subject,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: spec.publicKey,
      signingKey: spec.signingKey,
      signingAlgorithm: SIGN_ALG,
      extensions: spec.extensions
    },
    x509Crypto
  );
  return `${cert.toString("pem")}
`;
}
async function generateKeys() {
  const keys = await webCrypto.subtle.generateKey(KEY_ALG, true, ["sign", "verify"]);
  const publicKey = new x509.PublicKey(
    KeyObject.from(keys.publicKey).export({ type: "spki", format: "der" })
  );
  return {
    privateKey: keys.privateKey,
    keyPem: KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }),
    publicKey,
    keyId: Buffer.from(await publicKey.getKeyIdentifier(x509Crypto)).toString("hex")
  };
}
function signer(key, subject, keyId) {
  const authorityKeyId = new x509.AuthorityKeyIdentifierExtension(keyId, false);
  return { key, subject, authorityKeyId, altNames: /* @__PURE__ */ new Map() };
}
async function signingCA(certPem, keyObject) {
  const cert = new x509.X509Certificate(certPem);
  const der = keyObject.export({ type: "pkcs8", format: "der" });
  const key = await webCrypto.subtle.importKey("pkcs8", der, KEY_ALG, false, ["sign"]);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const keyId = ski ?? Buffer.from(await cert.publicKey.getKeyIdentifier(x509Crypto)).toString("hex");
  return signer(key, cert.subjectName, keyId);
}
async function newCA(plan, pregenerated) {
  const keys = await (pregenerated ?? generateKeys());
  const subject = dn([
    ["CN", plan.name],
    ["O", ORGANIZATION]
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
      new x509.SubjectKeyIdentifierExtension(keys.keyId, false)
    ]
  });
  return {
    pair: { cert, key: keys.keyPem },
    signer: signer(keys.privateKey, subject, keys.keyId)
  };
}
async function issueLeaf(ca, plan, pregenerated) {
  const sanKey = JSON.stringify(plan.altNames);
  let san = ca.altNames.get(sanKey);
  if (!san)
    ca.altNames.set(sanKey, san = new x509.SubjectAlternativeNameExtension(plan.altNames, false));
  const keys = await (pregenerated ?? generateKeys());
  const cert = await signCertificate({
    issuer: ca.subject,
    subject: dn([
      ["CN", plan.name],
      ["O", ORGANIZATION],
      ["OU", plan.role]
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
      new x509.SubjectKeyIdentifierExtension(keys.keyId, false)
    ]
  });
  return { cert, key: keys.keyPem };
}
async function newCluster(caPlan, leaves) {
  const leafKeys = leaves.map(() => generateKeys());
  leafKeys.forEach((p) => p.catch(() => {
  }));
  const { pair: ca, signer: caSigner } = await newCA(caPlan);
  const pairs = await Promise.all(leaves.map((plan, i) => issueLeaf(caSigner, plan, leafKeys[i])));
  return { ca, leaves: pairs };
}
export {
  generateKeys,
  issueLeaf,
  newCA,
  newCluster,
  signingCA
};
