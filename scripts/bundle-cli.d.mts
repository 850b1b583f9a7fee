/** The repository root (see bundle-cli.mjs). */
export function repoRoot(): string;
/** Bundles src/cli/bin.ts into `outfile` and its chunks into `<name>-chunks/` beside it. */
export function bundleCli(outfile: string): Promise<void>;
/** Bundles the TypeScript entry point `file` (absolute) with its dependencies external; its path. */
export function bundleScript(
  file: string,
  opts?: { sourcemap?: boolean | 'inline' | 'linked' | 'external' | 'both' },
): Promise<string>;
