import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCredentials } from '../../src/store/registry-auth.js';

let dir: string;
let warnings: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dist-build-auth-'));
  warnings = [];
  // A credential helper as Docker runs them: `docker-credential-fake get`, the server on stdin.
  writeFileSync(
    join(dir, 'docker-credential-fake'),
    `#!/bin/sh
[ "$1" = get ] || exit 2
read server
case "$server" in
  ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"octo","Secret":"s3cret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"refresh"}' ;;
  broken.example) echo 'not json' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
  );
  chmodSync(join(dir, 'docker-credential-fake'), 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const env = (config: object) => {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH}` };
};
const load = (host: string, e: NodeJS.ProcessEnv) =>
  loadCredentials(host, e, (m) => warnings.push(m));

describe('registry credentials from the Docker config', () => {
  it('runs the helper named for the registry in credHelpers', async () => {
    const creds = await load('ghcr.io', env({ credHelpers: { 'ghcr.io': 'fake' } }));
    expect(creds).toEqual({
      username: 'octo',
      password: 's3cret',
      source: 'docker-credential-fake (credHelpers.ghcr.io)',
    });
    expect(warnings).toEqual([]);
  });

  it('runs the credsStore helper after the auths entries, quietly when it has nothing', async () => {
    const auth = Buffer.from('me:pw').toString('base64');
    const e = env({ credsStore: 'fake', auths: { 'other.example': { auth }, 'ghcr.io': {} } });
    expect(await load('ghcr.io', e)).toMatchObject({ username: 'octo', password: 's3cret' });
    expect(await load('other.example', e)).toMatchObject({ username: 'me', password: 'pw' });
    expect(await load('nothing.example', e)).toBeNull();
    expect(warnings).toEqual([]);
  });

  it('says why a helper gave nothing', async () => {
    expect(await load('ghcr.io', env({ credsStore: 'missing' }))).toBeNull();
    expect(await load('broken.example', env({ credsStore: 'fake' }))).toBeNull();
    expect(await load('docker.io', env({ credsStore: 'fake' }))).toBeNull();
    expect(await load('ghcr.io', env({ credsStore: '../evil' }))).toBeNull();
    expect(warnings).toEqual([
      expect.stringMatching(/docker-credential-missing is not on the PATH/),
      expect.stringMatching(
        /docker-credential-fake \(credsStore\) gave no credentials for broken\.example: its answer is not JSON/,
      ),
      expect.stringMatching(/identity token for docker\.io/),
      expect.stringMatching(/not a plain name/),
    ]);
  });

  it('prefers the environment', async () => {
    const e = { ...env({ credHelpers: { 'ghcr.io': 'fake' } }) };
    const creds = await load('ghcr.io', {
      ...e,
      DIST_BUILD_REGISTRY_USERNAME: 'u',
      DIST_BUILD_REGISTRY_PASSWORD: 'p',
    });
    expect(creds).toMatchObject({ username: 'u', password: 'p' });
  });
});
