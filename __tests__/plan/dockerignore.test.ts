import fs from 'node:fs';
import path from 'node:path';
import {
  DockerignoreMatcher,
  cleanPath,
  findDockerignore,
  isDockerignored,
  listDockerContext,
  parseDockerignore,
  sentOwnFile,
} from '../../src/plan/dockerignore.js';
import { cleanupTempDirs, tempDir, writeTree } from './helpers.js';

afterAll(cleanupTempDirs);

describe('parseDockerignore (moby ignorefile.ReadAll)', () => {
  it('drops comments and blanks, trims, strips leading / and ./, cleans, keeps ! markers', () => {
    // The first block is moby's own ignorefile_test.go content.
    const text = [
      'test1',
      '/test2',
      '/a/file/here',
      '',
      'lastfile',
      '# this is a comment',
      '! /inverted/abs/path',
      '!',
      '! ',
      './dot/slash',
      'trailing/slash/',
      'a//b/../c',
      '   spaced   ',
      '  # not a comment: # only counts as the very first character',
      '\t',
      '!./re/include/',
    ].join('\n');
    expect(parseDockerignore(text)).toEqual([
      'test1',
      'test2',
      'a/file/here',
      'lastfile',
      '!inverted/abs/path',
      '!',
      '!',
      'dot/slash',
      'trailing/slash',
      'a/c',
      'spaced',
      '# not a comment: # only counts as the very first character',
      '!re/include',
    ]);
  });

  it('handles CRLF line ends and a UTF-8 BOM', () => {
    expect(parseDockerignore('\uFEFF*.log\r\n!keep.log\r\n')).toEqual(['*.log', '!keep.log']);
  });

  it('keeps "/" and leading ".." (they just match nothing inside the context)', () => {
    expect(parseDockerignore('/\n../x\n')).toEqual(['/', '../x']);
  });
});

describe('cleanPath (Go path.Clean)', () => {
  it.each([
    ['', '.'],
    ['.', '.'],
    ['a/', 'a'],
    ['./a/./b/', 'a/b'],
    ['a//b', 'a/b'],
    ['a/b/../c', 'a/c'],
    ['a/../..', '..'],
    ['../../a', '../../a'],
    ['/../a', '/a'],
    ['/', '/'],
  ])('%j -> %j', (input, want) => {
    expect(cleanPath(input)).toBe(want);
  });
});

/** moby/patternmatcher TestMatches table: pattern, path, matches (itself or through a parent). */
const MOBY_SINGLE: [string, string, boolean][] = [
  ['**', 'file', true],
  ['**', 'dir/file', true],
  ['**/', 'file', true],
  ['**/**', 'dir/file', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/dir2/file', true],
  ['**/dir', 'dir', true],
  ['**/dir', 'dir/file', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**file', 'file', true],
  ['**file', 'dir/file', true],
  ['**/file', 'dir/file', true],
  ['**file', 'dir/dir/file', true],
  ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file.txt', true],
  ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/file*.txt', 'dir/dir/file.txt', true],
  ['**/file*.txt*', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['**/**/*.txt', 'file.txt', true],
  ['a**/*.txt', 'a/file.txt', true],
  ['a**/*.txt', 'a/dir/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/dir/file.txt', false],
  ['a/*.txt', 'a/file.txt', true],
  ['a/*.txt**', 'a/file.txt', true],
  ['a[b-d]e', 'ae', false],
  ['a[b-d]e', 'ace', true],
  ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcdef', false],
  ['abc.def', 'abc.def', true],
  ['abc.def', 'abcZdef', false],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc', false],
  ['abc/**', 'abc/def', true],
  ['abc/**', 'abc/def/ghi', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true],
  ['a(b)c/def', 'a(b)c/xyz', false],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  [
    'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl',
    'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl',
    true,
  ],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['a\\\\', 'a\\', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  // Go filepath.Match cases (moby matchTests) that are valid patterns
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[^e-g]', 'abc', true],
  ['ab[^c]', 'abc', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['*x', 'xxx', true],
];

/** moby multi-pattern cases plus Docker-documented behaviour. */
const MULTI: [string[], string, boolean][] = [
  [['**', '!util/docker/web'], 'util/docker/web/foo', false],
  [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
  [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
  // a folder pattern followed by an exception
  [['docs', '!docs/README.md'], 'docs/README.md', false],
  [['docs/', '!docs/README.md'], 'docs/README.md', false],
  [['docs/*', '!docs/README.md'], 'docs/README.md', false],
  [['docs', '!docs/README.md'], 'docs/other.md', true],
  // last match wins
  [['*.go', '!fileutils.go'], 'fileutils.go', false],
  [['!fileutils.go', '*.go'], 'fileutils.go', true],
  [['*.md', '!README*.md', 'README-secret.md'], 'README-secret.md', true],
  [['*.md', '!README*.md', 'README-secret.md'], 'README.md', false],
  // `*.md` only at the root, `**/*.md` anywhere
  [['*.md'], 'README.md', true],
  [['*.md'], 'docs/guide.md', false],
  [['**/*.md'], 'docs/guide.md', true],
  [['**/*.md'], 'README.md', true],
  // parent directory exclusion
  [['node_modules'], 'node_modules/a/b/index.js', true],
  [['*/temp*'], 'somedir/temporary.txt', true],
  [['*/temp*'], 'somedir/temp/deep/file', true],
  [['*/*/temp*'], 'somedir/subdir/temporary.txt', true],
  [['temp?'], 'tempa', true],
  [['temp?'], 'tempab', false],
  [['/abs/path'], 'abs/path', true],
];

describe('DockerignoreMatcher', () => {
  it.each(MOBY_SINGLE)('pattern %j on %j -> %j', (pattern, file, want) => {
    const m = new DockerignoreMatcher([pattern]);
    expect(m.matches(file)).toBe(want);
    // the walk-time variant (parent results handed down) agrees
    const parts = file.split('/');
    let info;
    for (let i = 1; i < parts.length; i++) {
      info = m.matchesUsingParentResults(parts.slice(0, i).join('/'), info).info;
    }
    expect(m.matchesUsingParentResults(file, info).excluded).toBe(want);
  });

  it.each(MULTI)('patterns %j on %j -> %j', (patterns, file, want) => {
    const m = DockerignoreMatcher.fromText(patterns.join('\n'));
    expect(m.matches(file)).toBe(want);
  });

  it.each([
    ['!'],
    ['['],
    ['[^'],
    ['[^bc'],
    ['a['],
    ['[]a]'],
    ['[-]'],
    ['[x-]'],
    ['[-x]'],
    ['\\'],
    ['[a-b-c]'],
  ])('rejects the malformed pattern %j like Go does', (pattern) => {
    expect(() => new DockerignoreMatcher([pattern])).toThrow();
  });

  it('does not let "." be excluded', () => {
    expect(new DockerignoreMatcher(['*']).matches('.')).toBe(false);
  });

  it('isDockerignored is a one-shot helper', () => {
    expect(isDockerignored('*.log\n!keep.log', 'a.log')).toBe(true);
    expect(isDockerignored('*.log\n!keep.log', 'keep.log')).toBe(false);
  });

  it('inherits parent results during a walk like BuildKit (skipped exception stays skipped)', () => {
    // For the directory `d` the exception `!d` is skipped (nothing matched yet), so BuildKit
    // records it as not matching; for `d/f` the first pattern matches and the exception is only
    // tested against `d/f` itself. MatchesOrParentMatches would re-include `d/f`.
    const m = new DockerignoreMatcher(['d/f', '!d']);
    const dir = m.matchesUsingParentResults('d');
    expect(dir.excluded).toBe(false);
    expect(m.matchesUsingParentResults('d/f', dir.info).excluded).toBe(true);
    expect(m.matches('d/f')).toBe(false);
  });
});

describe('listDockerContext', () => {
  const make = (files: Record<string, string | null>): string => {
    const root = tempDir();
    writeTree(root, files);
    return root;
  };

  it('sends everything without a .dockerignore, plus nothing outside the context', () => {
    const root = make({
      'app/Dockerfile': 'FROM scratch',
      'app/src/main.go': 'package main',
      'app/.hidden': 'x',
      'other/file': 'y',
    });
    const r = listDockerContext(root, { context: 'app', file: 'app/Dockerfile' });
    expect(r.files).toEqual(['app/.hidden', 'app/Dockerfile', 'app/src/main.go']);
    expect(r.ignoreFile).toBeNull();
  });

  it('applies .dockerignore with re-includes, ** and parent-dir exclusion', () => {
    const root = make({
      'ctx/Dockerfile': 'FROM scratch',
      'ctx/.dockerignore': [
        '# build outputs',
        'dist',
        '*.md',
        '!README.md',
        '**/*.log',
        'secrets/',
        '!secrets/public.pem',
        'Dockerfile',
      ].join('\n'),
      'ctx/README.md': 'r',
      'ctx/CHANGELOG.md': 'c',
      'ctx/docs/guide.md': 'g',
      'ctx/dist/a.js': 'a',
      'ctx/dist/sub/b.js': 'b',
      'ctx/x.log': 'l',
      'ctx/deep/er/y.log': 'l',
      'ctx/deep/er/keep.txt': 'k',
      'ctx/secrets/key': 'k',
      'ctx/secrets/public.pem': 'p',
      'ctx/empty': null,
    });
    const r = listDockerContext(root, { context: 'ctx', file: 'ctx/Dockerfile' });
    expect(r.ignoreFile).toBe('ctx/.dockerignore');
    expect(r.files).toEqual([
      'ctx/.dockerignore',
      'ctx/Dockerfile', // ignored, but the Dockerfile is always an input
      'ctx/README.md',
      'ctx/deep/er/keep.txt',
      'ctx/docs/guide.md', // `*.md` is anchored at the context root
      'ctx/secrets/public.pem',
    ]);
  });

  it('prefers <Dockerfile>.dockerignore next to the Dockerfile and adds an outside Dockerfile', () => {
    const root = make({
      'docker/api.Dockerfile': 'FROM scratch',
      'docker/api.Dockerfile.dockerignore': 'tests\n',
      'svc/.dockerignore': 'src\n',
      'svc/src/a.ts': 'a',
      'svc/tests/a.test.ts': 't',
    });
    const spec = { context: 'svc', file: 'docker/api.Dockerfile' };
    expect(findDockerignore(root, spec.context, spec.file)).toBe(
      'docker/api.Dockerfile.dockerignore',
    );
    const r = listDockerContext(root, spec);
    expect(r.files).toEqual(['docker/api.Dockerfile', 'svc/.dockerignore', 'svc/src/a.ts']);
  });

  it('walks into an excluded directory only when an exception may re-include inside it', () => {
    const root = make({
      Dockerfile: 'FROM scratch',
      '.dockerignore': 'vendor\n!vendor/keep\n*/cache\n!**/important\n',
      'vendor/keep/x': 'x',
      'vendor/drop/y': 'y',
      'a/cache/important': 'i',
      'a/cache/junk': 'j',
    });
    const r = listDockerContext(root, { context: '.', file: 'Dockerfile' });
    expect(r.files).toEqual(['.dockerignore', 'Dockerfile', 'a/cache/important', 'vendor/keep/x']);
  });

  it('keeps symlinks as symlinks and skips .dist-build', () => {
    const root = make({ Dockerfile: 'FROM scratch', 'real/f': 'x', '.dist-build/index/x': '{}' });
    fs.symlinkSync('real', path.join(root, 'link'));
    const r = listDockerContext(root, { context: '.', file: 'Dockerfile' });
    expect(r.files).toEqual(['Dockerfile', 'link', 'real/f']);
  });

  it('reports a missing context or Dockerfile instead of failing', () => {
    const root = make({ 'ctx/file': 'x', Dockerfile: 'FROM scratch' });
    expect(listDockerContext(root, { context: 'nope', file: 'Dockerfile' })).toEqual({
      files: ['Dockerfile'],
      ignoreFile: null,
      missing: ['nope'],
    });
    expect(listDockerContext(root, { context: 'ctx', file: 'ctx/Dockerfile' })).toEqual({
      files: ['ctx/file'],
      ignoreFile: null,
      missing: ['ctx/Dockerfile'],
    });
  });
});

describe('sentOwnFile', () => {
  const make = (files: Record<string, string>): string => {
    const root = tempDir('dist-build-own-');
    writeTree(root, files);
    return root;
  };
  const spec = { context: '.', file: 'Dockerfile' };
  const state = { Dockerfile: 'FROM scratch', '.dist-build/run/certs-1/master-key.pem': 'k' };

  it('names a file of .dist-build Docker sends (the key leaves it out), or null when it sends none', () => {
    expect(sentOwnFile(make(state), spec)).toBe('.dist-build/run/certs-1/master-key.pem');
    expect(sentOwnFile(make({ ...state, '.dockerignore': '.dist-build\n' }), spec)).toBeNull();
    expect(sentOwnFile(make({ ...state, '.dockerignore': '*\n!Dockerfile\n' }), spec)).toBeNull();
    expect(sentOwnFile(make({ ...state, '.dockerignore': '**/*.pem\n' }), spec)).toBeNull();
    expect(
      sentOwnFile(make({ ...state, '.dockerignore': '.dist-build\n!.dist-build/run\n' }), spec),
    ).toBe('.dist-build/run/certs-1/master-key.pem');
    // In a context below the root, the context's own .dist-build (another config's).
    expect(
      sentOwnFile(make({ 'svc/Dockerfile': 'FROM scratch', 'svc/.dist-build/index/x': '{}' }), {
        context: 'svc',
        file: 'svc/Dockerfile',
      }),
    ).toBe('svc/.dist-build/index/x');
    expect(sentOwnFile(make({ Dockerfile: 'FROM scratch' }), spec)).toBeNull();
  });
});
