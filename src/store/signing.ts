/**
 * Result signing: an HMAC-SHA256, keyed by a secret from the environment, over a result's cache
 * key and the digest of its canonical manifest (the manifest without `signature`, object keys
 * sorted, no whitespace). Stored in the manifest as `signature: "hmac-sha256:<hex>"`.
 *
 * Why: a pull request's build can write to caches that main's builds read (a shared Actions cache
 * scope, a registry). Main holds the secret, a pull request from a fork does not, so what the
 * pull request writes is unsigned, and main's builds treat unsigned or badly signed results as
 * misses. Blobs need no signature: a signed manifest names them by digest, and every blob read
 * is verified against its digest.
 *
 * `SignedStore` wraps one store: `putResult` adds the signature; `getResult` returns `null` (a
 * miss, with a warning) for a result that is unsigned or whose signature does not match. Wrap
 * each layer of a `LayeredStore` (src/store/open.ts does), so that a bad result in a fast layer is
 * a miss there and the read falls through to the slower layers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { SignConfig } from '../config/types.js';
import { sha256Digest } from './digest.js';
import type { BlobInfo, BlobSource, ResultListing, ResultManifest, Store } from './types.js';
import type { ReadOnlyAdopter } from './layered.js';

export const DEFAULT_SECRET_ENV = 'DIST_BUILD_CACHE_SECRET';
export const SIGNATURE_PREFIX = 'hmac-sha256:';
/** Separates what is signed from anything else HMAC'd with the same secret. */
const SIGNATURE_CONTEXT = 'dist-build/result-signature/v1';

/** Signing is required (`cache.sign.required`) but its secret is not in the environment. */
export class SigningConfigError extends Error {
  override name = 'SigningConfigError';
}

/** Canonical JSON: object keys sorted (UTF-16 order, keys are ASCII here), no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cannot encode ${typeof value} as JSON`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

/** Digest of the canonical manifest without its signature. */
export function manifestDigest(manifest: ResultManifest): string {
  const rest: Record<string, unknown> = { ...manifest };
  delete rest.signature;
  return sha256Digest(canonicalJson(rest));
}

function hmac(secret: string | Buffer, manifest: ResultManifest): Buffer {
  return createHmac('sha256', secret)
    .update(`${SIGNATURE_CONTEXT}\n${manifest.cacheKey}\n${manifestDigest(manifest)}`)
    .digest();
}

/** The signature of a manifest: `hmac-sha256:<hex>`. */
export function signManifest(manifest: ResultManifest, secret: string | Buffer): string {
  return `${SIGNATURE_PREFIX}${hmac(secret, manifest).toString('hex')}`;
}

/** Checks a manifest's signature (constant-time compare). */
export function checkSignature(
  manifest: ResultManifest,
  secret: string | Buffer,
): 'ok' | 'unsigned' | 'bad' {
  const sig = manifest.signature;
  if (sig === undefined || sig === '') return 'unsigned';
  if (!sig.startsWith(SIGNATURE_PREFIX)) return 'bad';
  const hex = sig.slice(SIGNATURE_PREFIX.length);
  if (!/^[0-9a-f]{64}$/.test(hex)) return 'bad';
  return timingSafeEqual(Buffer.from(hex, 'hex'), hmac(secret, manifest)) ? 'ok' : 'bad';
}

/**
 * The secret for `sign` (the config's `cache.sign`) from `env`: `null` when the config does not
 * sign, or when the variable is unset and signing is not required (a warning says so). Throws a
 * `SigningConfigError` when it is unset and required.
 */
export function signingSecret(
  sign: SignConfig | undefined,
  env: NodeJS.ProcessEnv,
  onWarning: (message: string) => void = () => {},
): string | null {
  if (!sign) return null;
  const secret = env[sign.secretEnv];
  if (secret) return secret;
  if (sign.required) {
    throw new SigningConfigError(
      `cache.sign.required is set but the environment variable ${sign.secretEnv} (the signing secret) is not`,
    );
  }
  onWarning(
    `cache signing is off: ${sign.secretEnv} is not set, so results are written unsigned and read unchecked`,
  );
  return null;
}

export interface SignedStoreOptions {
  /** The HMAC key. */
  secret: string | Buffer;
  /** Warnings about rejected results (unsigned: once per store; bad: once per cache key). */
  onWarning?: (message: string) => void;
}

export class SignedStore implements Store {
  readonly kind: string;
  readonly location: string;
  readonly listResults?: (prefix?: string) => AsyncIterable<ResultListing>;
  readonly flush?: () => Promise<void>;
  readonly warm?: () => Promise<void>;
  readonly openBlobChunks?: (digest: string) => Promise<BlobSource | null>;
  readonly tempDir?: () => Promise<string>;
  readonly adoptBlobFile?: (file: string, digest: string) => Promise<BlobInfo>;
  readonly adoptReadsOnly?: boolean;
  readonly makeRoom?: () => Promise<number>;
  readonly blobPath?: (digest: string) => string;
  private readonly secret: string | Buffer;
  private readonly onWarning: (message: string) => void;
  private readonly warned = new Set<string>();
  /** Results rejected since this store was made: unsigned, and with a bad signature. */
  readonly rejected = { unsigned: 0, bad: 0 };

  constructor(
    readonly inner: Store,
    opts: SignedStoreOptions,
  ) {
    if (opts.secret.length === 0) throw new TypeError('the signing secret is empty');
    this.kind = inner.kind;
    this.location = inner.location;
    this.secret = opts.secret;
    this.onWarning = opts.onWarning ?? (() => {});
    if (inner.listResults) this.listResults = (prefix) => inner.listResults!(prefix);
    if (inner.flush) this.flush = () => inner.flush!();
    if (inner.warm) this.warm = () => inner.warm!();
    if (inner.openBlobChunks) this.openBlobChunks = (d) => inner.openBlobChunks!(d);
    if (inner.makeRoom) this.makeRoom = () => inner.makeRoom!();
    if (inner.blobPath) this.blobPath = (d) => inner.blobPath!(d);
    // Blobs are not signed: the single-pass save (pack into tempDir, then adopt) passes through.
    if (inner.tempDir && inner.adoptBlobFile) {
      this.tempDir = () => inner.tempDir!();
      this.adoptBlobFile = (file, digest) => inner.adoptBlobFile!(file, digest);
      this.adoptReadsOnly = (inner as ReadOnlyAdopter).adoptReadsOnly === true;
    }
  }

  hasBlobs(digests: readonly string[]): Promise<Set<string>> {
    return this.inner.hasBlobs(digests);
  }

  putBlob(data: Readable | AsyncIterable<Buffer>, expectedDigest?: string): Promise<BlobInfo> {
    return this.inner.putBlob(data, expectedDigest);
  }

  putBlobFile(file: string): Promise<BlobInfo> {
    return this.inner.putBlobFile(file);
  }

  openBlob(digest: string): Promise<Readable | null> {
    return this.inner.openBlob(digest);
  }

  /** May over-report: a result that is there but badly signed is still a miss in `getResult`. */
  hasResults(cacheKeys: readonly string[]): Promise<Set<string>> {
    return this.inner.hasResults(cacheKeys);
  }

  async getResult(cacheKey: string): Promise<ResultManifest | null> {
    const manifest = await this.inner.getResult(cacheKey);
    if (!manifest) return null;
    const check = checkSignature(manifest, this.secret);
    if (check === 'ok') return manifest;
    if (check === 'unsigned') {
      this.rejected.unsigned++;
      this.warnOnce(
        'unsigned',
        `${this.location}: result ${cacheKey} is not signed; a miss (unsigned results are not trusted while signing is on; further ones are not reported)`,
      );
    } else {
      this.rejected.bad++;
      this.warnOnce(
        `bad:${cacheKey}`,
        `${this.location}: result ${cacheKey} has a bad signature (another secret, or tampered with); a miss`,
      );
    }
    return null;
  }

  putResult(manifest: ResultManifest): Promise<void> {
    return this.inner.putResult({ ...manifest, signature: signManifest(manifest, this.secret) });
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.onWarning(message);
  }
}
