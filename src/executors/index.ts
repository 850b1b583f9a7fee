/**
 * Executors run a worker's jobs; see `types.ts` for the interface, `command.ts` for `run:` and
 * `docker.ts` for `docker:` builds.
 */
export * from './types.js';
export * from './command.js';
export * from './docker.js';
export * from './output.js';
