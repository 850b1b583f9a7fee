/** The repository root (see bundle-cli.mjs). */
export function repoRoot(): string;
/** The banner that gives bundled CommonJS code `require` (see bundle-cli.mjs). */
export const REQUIRE_BANNER: string;
/** Bundles src/cli/bin.ts into `outfile` and its chunks into `chunkDir` beside it. */
export function bundleCli(
  outfile: string,
  opts?: { chunkDir?: string; sourcemap?: boolean | 'linked'; legalComments?: 'none' },
): Promise<void>;
/** Bundles the TypeScript entry point `file` (absolute) with its dependencies external; its path. */
export function bundleScript(
  file: string,
  opts?: { sourcemap?: boolean | 'inline' | 'linked' | 'external' | 'both' },
): Promise<string>;
