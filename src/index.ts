// Library entry point: the same pieces the CLI and the action use.
export { loadConfig, parseConfig } from './config/load.js';
export { ConfigError, formatIssue } from './config/errors.js';
export type { ConfigIssue } from './config/errors.js';
export type * from './config/types.js';
export { configSchema } from './config/schema.js';
export { parseDuration, formatDuration } from './config/duration.js';
export { expandUnits, workerCount } from './plan/units.js';
export {
  planBuild,
  numberedWorkers,
  expectedDuration,
  readHistory,
  readPrevious,
  readMembers,
  PlanInputError,
} from './plan/plan.js';
export type { PlanJson, PlanOptions, History } from './plan/plan.js';
export { place, NoEligibleWorkerError } from './plan/placement.js';
export { computeCacheKeys } from './plan/keys.js';
export type * from './plan/types.js';
export { VERSION } from './version.js';
export * from './store/index.js';
export { Master } from './cluster/master.js';
export { WorkerAgent } from './cluster/worker.js';
export { Run } from './cluster/scheduler.js';
export type { RunOptions, RunEvent } from './cluster/scheduler.js';
export { parseAddress, formatAddress } from './cluster/transport.js';
export type { Address, Security } from './cluster/transport.js';
export { createCA, issueCert, ephemeralTls, loadTls } from './cluster/certs.js';
export type * from './report/types.js';
export { writeReport, renderHtml, renderMarkdown, summaryTable } from './report/index.js';
