/**
 * A simulator process for bench/cluster.ts (`--agent-procs N`): runs a share of the WorkerAgents.
 * Talks to the parent over the IPC channel: sends `ready` once the agents exist and listen (with
 * the time their servers took to start), joins them on `go` and answers `registered`
 * (registration times, ms after `go` arrived), stops them on `stop` and answers `stopped`. Exits
 * when the parent goes away.
 */
import {
  createAgents,
  joinAgents,
  listenAgents,
  stopAgents,
  type AgentsOptions,
} from './agents.js';

export type ToChild = { type: 'go' } | { type: 'stop' };
export type FromChild =
  | { type: 'ready'; listenMs: number }
  | { type: 'registered'; times: number[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string };

const send = (m: FromChild): void => void process.send?.(m);
const opts = JSON.parse(process.argv[2] ?? '{}') as AgentsOptions;
try {
  const agents = await createAgents(opts);
  process.on('disconnect', () => void stopAgents(agents).then(() => process.exit(0)));
  process.on('message', (m: ToChild) => {
    if (m.type === 'go') {
      joinAgents(agents).then(
        (times) => send({ type: 'registered', times }),
        (err: Error) => send({ type: 'error', message: err.message }),
      );
    } else if (m.type === 'stop') {
      void stopAgents(agents).then(() => {
        send({ type: 'stopped' });
        process.disconnect();
        process.exit(0);
      });
    }
  });
  const listenMs = await listenAgents(agents);
  send({ type: 'ready', listenMs });
} catch (err) {
  send({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
}
