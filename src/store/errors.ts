/**
 * A problem with a cache store's options (`cache.stores[i]` in dist-build.yml), thrown by a
 * backend factory (see src/store/open.ts); reported as a config problem (exit code 2).
 */
export class StoreOptionsError extends Error {
  override name = 'StoreOptionsError';
  /**
   * @param option the option the problem is about, when it is one: `openStores` then points at
   *   that option's line in the config.
   */
  constructor(
    message: string,
    readonly option?: string,
  ) {
    super(message);
  }
}

/** An error's message (or the thrown value as text), for warnings. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
