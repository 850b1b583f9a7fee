// Result stores (see types.ts for the interface) and packing of declared outputs (pack.ts).
export {
  RESULT_FORMAT,
  DIGEST_PATTERN,
  CorruptBlobError,
  UnsafeArchiveError,
  MissingOutputError,
  isDigest,
  assertDigest,
  outputPathProblem,
  manifestProblems,
} from './types.js';
export type { BlobInfo, BlobOpener, OutputEntry, ResultManifest, Store } from './types.js';
export { LocalStore } from './local.js';
export type { LocalStoreOptions } from './local.js';
export {
  saveOutputs,
  digestOutputs,
  restoreOutputs,
  blobOpenerFor,
  outputsPresent,
  DEFAULT_MAX_ENTRY_BYTES,
} from './pack.js';
export type { RestoreOptions } from './pack.js';
export { sha256Digest, digestStream, verifiedStream, isVerifiedFor } from './digest.js';
export { LayeredStore } from './layered.js';
export type { LayeredStoreOptions, LayeredStats } from './layered.js';
export { SignedStore, signManifest, checkSignature, SigningConfigError } from './signing.js';
export { openStore, openStores, effectiveStores, STORE_BACKENDS } from './open.js';
export type { OpenStoreOptions, StoreFactory } from './open.js';
export { StoreOptionsError } from './errors.js';
// The Actions cache (./gha.js) and registry (./registry.js) backends are loaded by openStore when a
// config names them; import those modules directly to use them on their own.
