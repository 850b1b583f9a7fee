// Jest transform: TypeScript -> ESM with esbuild (already a dev dependency for bundling).
// Type checking is `npm run typecheck`'s job; this only strips types, fast.
const { createHash } = require('node:crypto');
const { transformSync, version } = require('esbuild');

module.exports = {
  process(source, filename) {
    // .proto files are imported as text (esbuild's `text` loader does the same for the bundles).
    if (filename.endsWith('.proto')) return { code: `export default ${JSON.stringify(source)};` };
    const { code, map } = transformSync(source, {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcefile: filename,
      sourcemap: 'external',
    });
    return { code, map };
  },
  getCacheKey(source, filename, options) {
    return createHash('sha256')
      .update(version)
      .update('\0')
      .update(filename)
      .update('\0')
      .update(options.configString)
      .update('\0')
      .update(source)
      .digest('hex');
  },
};
