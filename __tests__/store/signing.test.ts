import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayeredStore } from '../../src/store/layered.js';
import { LocalStore } from '../../src/store/local.js';
import {
  checkSignature,
  SignedStore,
  signingSecret,
  signManifest,
  SigningConfigError,
} from '../../src/store/signing.js';
import { RESULT_FORMAT } from '../../src/store/types.js';
import type { ResultManifest } from '../../src/store/types.js';

let dir: string;
let local: LocalStore;
let warnings: string[];
const SECRET = 'main-branch-secret';

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-signing-'));
  local = await LocalStore.open(join(dir, 'cache'));
  warnings = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (data: string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function* bytes(text: string): AsyncGenerator<Buffer> {
  yield Buffer.from(text);
}

function manifest(cacheKey: string, digests: string[]): ResultManifest {
  return {
    format: RESULT_FORMAT,
    cacheKey,
    unit: 'lib',
    invocation: 'lib',
    exitCode: 0,
    durationMs: 12.5,
    worker: 'worker-1',
    createdAt: '2024-01-01T00:00:00.000Z',
    outputs: digests.map((digest) => ({ path: 'out', type: 'dir', digest, size: 1, files: 1 })),
  };
}

const signed = (secret = SECRET) =>
  new SignedStore(local, { secret, onWarning: (m) => warnings.push(m) });

describe('result signing', () => {
  it('signs on put; a good signature is a hit', async () => {
    const a = await local.putBlob(bytes('a'));
    const key = sha('key');
    await signed().putResult(manifest(key, [a.digest]));
    const stored = JSON.parse(await readFile(local.resultPath(key), 'utf8')) as ResultManifest;
    expect(stored.signature).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(await signed().getResult(key)).toEqual(stored);
    expect(warnings).toEqual([]);
  });

  it('an unsigned result is a miss, warned once', async () => {
    const a = await local.putBlob(bytes('a'));
    await local.putResult(manifest(sha('one'), [a.digest]));
    await local.putResult(manifest(sha('two'), [a.digest]));
    const store = signed();
    expect(await local.getResult(sha('one'))).not.toBeNull();
    expect(await store.getResult(sha('one'))).toBeNull();
    expect(await store.getResult(sha('two'))).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not signed/);
    expect(store.rejected).toEqual({ unsigned: 2, bad: 0 });
  });

  it('a tampered result or one signed with another secret is a miss', async () => {
    const a = await local.putBlob(bytes('a'));
    const b = await local.putBlob(bytes('b'));
    const key = sha('key');
    await signed().putResult(manifest(key, [a.digest]));
    // Someone points the signed result at other bytes.
    const stored = JSON.parse(await readFile(local.resultPath(key), 'utf8')) as ResultManifest;
    await writeFile(
      local.resultPath(key),
      JSON.stringify({ ...stored, outputs: [{ ...stored.outputs[0]!, digest: b.digest }] }),
    );
    expect(await signed().getResult(key)).toBeNull();
    expect(warnings.join('\n')).toMatch(/bad signature/);

    await signed('a pull request guess').putResult(manifest(key, [a.digest]));
    expect(await signed().getResult(key)).toBeNull();
    expect(await signed('a pull request guess').getResult(key)).not.toBeNull();

    // Garbage in the signature field.
    await local.putResult({ ...manifest(key, [a.digest]), signature: 'hmac-sha256:zz' });
    expect(await signed().getResult(key)).toBeNull();
  });

  it('signatures cover the cache key and every field but the signature', () => {
    const m = manifest(sha('k'), [sha('blob')]);
    const sig = signManifest(m, SECRET);
    expect(checkSignature({ ...m, signature: sig }, SECRET)).toBe('ok');
    // Key order does not matter (canonical JSON).
    const reordered = Object.fromEntries(Object.entries(m).reverse()) as unknown as ResultManifest;
    expect(checkSignature({ ...reordered, signature: sig }, SECRET)).toBe('ok');
    expect(checkSignature({ ...m, cacheKey: sha('k2'), signature: sig }, SECRET)).toBe('bad');
    expect(checkSignature({ ...m, exitCode: 1, signature: sig }, SECRET)).toBe('bad');
    expect(checkSignature({ ...m, signature: sig }, 'other')).toBe('bad');
    expect(checkSignature(m, SECRET)).toBe('unsigned');
  });

  it('in a layered store a badly signed fast result falls through to a good slow one', async () => {
    const slow = await LocalStore.open(join(dir, 'slow'));
    const a = await local.putBlob(bytes('a'));
    await slow.putBlob(bytes('a'));
    const key = sha('key');
    await local.putResult(manifest(key, [a.digest])); // unsigned: poisoned
    await new SignedStore(slow, { secret: SECRET }).putResult(manifest(key, [a.digest]));
    const store = new LayeredStore([signed(), new SignedStore(slow, { secret: SECRET })]);
    const got = await store.getResult(key);
    expect(got?.signature).toMatch(/^hmac-sha256:/);
    // The copy-up replaced the poisoned result with the signed one.
    expect(checkSignature((await local.getResult(key))!, SECRET)).toBe('ok');
  });

  it('takes the secret from the environment; required and missing is an error', () => {
    const sign = { secretEnv: 'MY_SECRET', required: true };
    expect(signingSecret(sign, { MY_SECRET: 's' })).toBe('s');
    expect(() => signingSecret(sign, {})).toThrow(SigningConfigError);
    const notes: string[] = [];
    expect(signingSecret({ ...sign, required: false }, {}, (m) => notes.push(m))).toBeNull();
    expect(notes[0]).toMatch(/MY_SECRET is not set/);
    expect(signingSecret(undefined, { MY_SECRET: 's' })).toBeNull();
  });
});
