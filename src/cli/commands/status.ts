import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { processStillAlive } from '../../store/fsutil.js';
import { dirname, resolve } from 'node:path';
import { loadTls, type CertRole } from '../../cluster/certs.js';
import { call, protocol, type MasterClient, type OutputChunkMsg } from '../../cluster/protocol.js';
import { memberRecord } from '../../cluster/stats.js';
import {
  callMetadata,
  channelCredentials,
  channelOptions,
  connectProblem,
  grpcTarget,
  parseAddress,
  type Security,
} from '../../cluster/transport.js';
import { formatDuration } from '../../config/duration.js';
import { formatSize } from '../../config/size.js';
import { DEFAULT_CONFIG } from '../defaults.js';
import { RunFailure, UsageError } from '../errors.js';
import { addSecurityOptions, securityFrom, type SecurityFlags } from '../security.js';
import { table } from '../table.js';
import { currentRunFile } from './run.js';

interface ClientFlags extends SecurityFlags {
  master?: string;
  config: string;
}

/** The master to talk to: `--master`, else the local `dist-build run` in progress. */
async function connect(
  flags: ClientFlags,
  use: { command: string; roles: readonly CertRole[] },
): Promise<{ client: MasterClient; security: Security; address: string }> {
  let address = flags.master;
  let security: Security;
  if (!address) {
    const file = currentRunFile(dirname(resolve(flags.config)));
    let current: { master: string; certs: string; pid?: number; started?: string };
    try {
      current = JSON.parse(await readFile(file, 'utf8')) as typeof current;
    } catch {
      throw new UsageError(
        `no --master given and no local run in progress (${file} not found); start one with \`dist-build run\` or give --master tcp://host:port`,
      );
    }
    if (typeof current.pid === 'number' && !processStillAlive(current.pid, current.started)) {
      // A run that was killed left it: not a master that does not answer. (Not removed: a run
      // in another PID namespace sharing this directory looks the same from here.)
      throw new UsageError(
        `no --master given and no local run in progress (the run that wrote ${file}, pid ${current.pid}, is gone)`,
      );
    }
    address = current.master;
    security = { tls: await loadTls(current.certs, 'client') };
  } else {
    security = await securityFrom({ ...flags, name: flags.name ?? 'client' }, use);
  }
  const a = parseAddress(address);
  const p = protocol();
  return {
    client: new p.MasterClient(grpcTarget(a), channelCredentials(a, security), channelOptions(a)),
    security,
    address,
  };
}

/**
 * A failed call to the master as one line: exit 1 when the master cannot be reached (with the
 * connection's own error, not grpc-js's wrapping), 2 when it refused the request.
 */
function masterFailure(
  what: string,
  address: string,
  e: grpc.ServiceError,
  security: Security,
): RunFailure {
  if (e.code === grpc.status.DEADLINE_EXCEEDED)
    return new RunFailure(`${what}: ${noAnswer(address)}`);
  if (e.code === grpc.status.UNAVAILABLE) {
    const text = e.details || e.message;
    const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(text)?.[1];
    // Certificates of another CA, TLS on one side only...: said as such, as a worker says them.
    const why = connectProblem(last || text, security.tls !== undefined, 'this client');
    return new RunFailure(`${what}: cannot reach the master at ${address}: ${why}`);
  }
  if (e.code === grpc.status.UNIMPLEMENTED) {
    const why = connectProblem(e.details || e.message, security.tls !== undefined, 'this client');
    return new RunFailure(`${what}: ${address}: ${why}`, 2);
  }
  return new RunFailure(`${what}: ${e.details || e.message}`, 2);
}

/** How long `status` and `logs` wait for the master to answer (or, for `logs`, to connect). */
const ANSWER_MS = 10_000;

/** A master that accepts the connection and says nothing: stopped (SIGSTOP), hung, or not one. */
const noAnswer = (address: string): string =>
  `cannot reach the master at ${address}: no answer within ${ANSWER_MS / 1000}s`;

function clientCommand(cmd: Command): Command {
  cmd
    .option(
      '-m, --master <address>',
      'the master (default: the local `dist-build run` in progress)',
    )
    .option('-c, --config <file>', 'config whose local run to find', DEFAULT_CONFIG);
  return addSecurityOptions(cmd, 'client');
}

export function registerStatus(program: Command): void {
  clientCommand(
    program
      .command('status')
      .description('Show the cluster membership (and the run in progress) of a master.')
      .option('--json', 'print the membership records and units as JSON'),
  ).action(async (flags: ClientFlags & { json?: boolean }) => {
    const { client, security, address } = await connect(flags, {
      command: 'status',
      roles: ['client', 'master', 'worker'],
    });
    try {
      const s = await call(client, client.Status, {}, callMetadata(security), ANSWER_MS).catch(
        (e: grpc.ServiceError) => {
          throw masterFailure('status', address, e, security);
        },
      );
      if (flags.json) {
        process.stdout.write(
          JSON.stringify(
            {
              master_id: s.master_id,
              members: s.members.map((m) => ({
                ...memberRecord(m.member),
                worker_uuid: m.worker_uuid,
                running: m.running,
                done: m.done,
              })),
              units: s.units,
              ...(s.waiting_for
                ? {
                    waiting: {
                      workers: s.waiting_for,
                      until: new Date(s.waiting_until).toISOString(),
                    },
                  }
                : {}),
            },
            null,
            2,
          ) + '\n',
        );
        return;
      }
      const now = Date.now();
      const rows = [
        ['WORKER', 'CONNECTION', 'LOAD', 'DISK FREE', 'ANNOTATIONS', 'RUNNING', 'DONE'],
      ];
      for (const m of s.members) {
        const st = m.member.stats;
        const load = st?.cpu ? `${st.cpu.loadavg[0]?.toFixed(2)}/${st.cpu.cpus}` : '-';
        const disk = st?.disk.map((d) => `${d.name} ${formatSize(d.free)}`).join(', ') || '-';
        const ann = Object.entries(m.member.annotations)
          .filter(([k]) => k !== 'host')
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        rows.push([
          m.member.worker_id,
          m.member.connections.map((c) => c.socket).join(' '),
          load,
          disk,
          ann,
          m.running
            .map((r) => `${r.unit} (${formatDuration((now - r.started_at) / 1000)})`)
            .join(', ') || '-',
          String(m.done),
        ]);
      }
      const lines = [
        `master ${s.master_id.slice(0, 8)}, up ${formatDuration((now - s.started_at) / 1000)}, ${s.members.length} worker${s.members.length === 1 ? '' : 's'}` +
          (s.waiting_for
            ? ` (waiting for ${s.waiting_for} before it runs${s.waiting_until ? `, ${formatDuration(Math.max(0, s.waiting_until - now) / 1000)} left` : ''})`
            : ''),
        '',
        table(rows, [false, false, true, false, false, false, true]),
      ];
      if (s.units.length) {
        const by = new Map<string, number>();
        for (const u of s.units) by.set(u.state, (by.get(u.state) ?? 0) + 1);
        lines.push('', `run ${s.config}: ${[...by].map(([k, v]) => `${v} ${k}`).join(', ')}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      client.close();
    }
  });
}

export function registerLogs(program: Command): void {
  clientCommand(
    program
      .command('logs')
      .description("Print an invocation's output, streamed through the master from its worker.")
      .argument('<invocation>', 'invocation name or unit id')
      .option('-f, --follow', 'keep printing until the job ends'),
  ).action(async (invocation: string, flags: ClientFlags & { follow?: boolean }) => {
    const { client, security, address } = await connect(flags, {
      command: 'logs',
      roles: ['client', 'master'],
    });
    try {
      const stream = client.Logs(
        { invocation, follow: !!flags.follow, from: 0 },
        callMetadata(security),
      );
      // Ctrl-C ends the stream: an interruption (130, as everywhere in this CLI), not the end of
      // the job's output (0).
      let interrupted = false;
      process.once('SIGINT', () => {
        interrupted = true;
        stream.cancel();
      });
      // The stream has no deadline (--follow may wait long for a job), but the connection must
      // come up: a master that accepts it and never answers would hold this command forever.
      let unanswered = false;
      const connecting = setTimeout(() => {
        if (client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY)
          return;
        unanswered = true;
        stream.cancel();
      }, ANSWER_MS);
      try {
        for await (const chunk of stream as AsyncIterable<OutputChunkMsg>) {
          (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(chunk.data);
        }
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (unanswered) throw new RunFailure(`logs ${invocation}: ${noAnswer(address)}`);
        if (err.code === grpc.status.CANCELLED) {
          if (interrupted) process.exitCode = 130;
          return;
        }
        throw masterFailure(`logs ${invocation}`, address, err, security);
      } finally {
        clearTimeout(connecting);
      }
    } finally {
      client.close();
    }
  });
}
