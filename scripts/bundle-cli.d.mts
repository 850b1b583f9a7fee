/** Bundles src/cli/bin.ts into `outfile` (see bundle-cli.mjs). */
export function bundleCli(outfile: string): Promise<void>;
