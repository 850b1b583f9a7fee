/** Executors run a worker's jobs; see `types.ts` for the interface and `command.ts` for `run:`. */
export * from './types.js';
export * from './command.js';
export * from './output.js';
