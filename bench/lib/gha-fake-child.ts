// The fake Actions cache service (__tests__/fixtures/actions-cache-server.ts) in a process of its
// own, so a benchmark's RSS is its own and not the fake's (which keeps every archive in memory).
// Prints `ENV <json>` (protocol v2 environment) on stderr once listening; SIGTERM stops it.
import { startActionsCacheServer } from '../../__tests__/fixtures/actions-cache-server.js';

const server = await startActionsCacheServer();
process.stderr.write(`ENV ${JSON.stringify(server.env('v2'))}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
