/** Security flags shared by `master`, `worker`, `status` and `logs`. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertError, certSummary, dirFlag, loadTls } from '../cluster/certs.js';
import type { CertRole } from '../cluster/certs.js';
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

/**
 * The security of a command from its flags. With `use`, the certificate in `--certs` must carry
 * one of `use.roles`: a master started with a worker's certificate would otherwise listen, and
 * every worker would retry against it forever (they accept only a master's).
 */
export async function securityFrom(
  flags: SecurityFlags,
  use?: { command: string; roles: readonly CertRole[] },
): Promise<Security> {
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
  const tls = flags.certs ? await loadTls(flags.certs, flags.name ?? 'worker') : undefined;
  if (tls && use) {
    const role = certSummary(tls.cert).role;
    if (!role || !use.roles.includes(role as CertRole)) {
      const name = flags.name ?? 'worker';
      throw new CertError(
        `${join(flags.certs!, `${name}.pem`)} has role ${role ?? 'none'}: \`dist-build ${use.command}\` needs a certificate of role ${use.roles.join(' or ')} (give --name NAME of one, or issue one with \`dist-build certs issue --name ${use.roles[0]} --role ${use.roles[0]}${dirFlag(flags.certs!)}\`)`,
      );
    }
  }
  return {
    ...(tls ? { tls } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
    ...(token ? { token } : {}),
  };
}
