/** Security flags shared by `master`, `worker`, `status` and `logs`. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { loadTls } from '../cluster/certs.js';
import type { Security } from '../cluster/transport.js';
import { UsageError } from './errors.js';

export interface SecurityFlags {
  certs?: string;
  name?: string;
  insecure?: boolean;
  tokenFile?: string;
}

export function addSecurityOptions(cmd: Command, defaultName: string): Command {
  return cmd
    .option(
      '--certs <dir>',
      `directory with ca.pem, <name>.pem and <name>-key.pem (see \`dist-build certs\`)`,
    )
    .option('--name <name>', `certificate name in --certs`, defaultName)
    .option('--insecure', 'allow plaintext on TCP (no TLS); never do this off loopback')
    .option('--token-file <file>', 'shared token every call must carry (or set DIST_BUILD_TOKEN)');
}

export async function securityFrom(flags: SecurityFlags): Promise<Security> {
  let token = process.env.DIST_BUILD_TOKEN || undefined;
  if (flags.tokenFile) {
    try {
      token = (await readFile(flags.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new UsageError(
        `--token-file ${flags.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!token) throw new UsageError(`--token-file ${flags.tokenFile} is empty`);
  }
  if (flags.certs && flags.insecure) throw new UsageError('give either --certs or --insecure');
  return {
    ...(flags.certs ? { tls: await loadTls(flags.certs, flags.name ?? 'worker') } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
    ...(token ? { token } : {}),
  };
}
