/** Security flags shared by `master`, `worker`, `status` and `logs`. */
import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CertError, certSummary, dirFlag, loadTls, shellWord } from '../cluster/certs.js';
import type { CertRole } from '../cluster/certs.js';
import { formatAddress, isLoopback, type Address, type Security } from '../cluster/transport.js';
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
    const file = flags.tokenFile;
    let mode: number;
    try {
      const st = await stat(file);
      if (st.isDirectory()) throw new UsageError(`--token-file ${file}: a directory, not a file`);
      mode = st.mode & 0o777;
      token = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      if (err instanceof UsageError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        `--token-file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message)}`,
      );
    }
    // A secret every user of the machine can read is no secret (as with certificate keys).
    if (process.platform !== 'win32' && mode & 0o007)
      throw new UsageError(
        `--token-file ${file} ${mode & 0o004 ? 'can be read by' : mode & 0o002 ? 'can be changed by' : 'is open to'} every user of this machine (mode 0${mode.toString(8)}): make it private with \`chmod 600 ${shellWord(file)}\``,
      );
    if (!token) throw new UsageError(`--token-file ${file} is empty`);
    checkToken(token, `--token-file ${file}`);
  } else if (token !== undefined) {
    checkToken(token, 'DIST_BUILD_TOKEN');
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

/**
 * A warning for a server that listens in plaintext (`--insecure`) where other machines can reach
 * it, or undefined: the help says never to, and nothing else would say it was done.
 */
export function plaintextWarning(
  addresses: readonly Address[],
  security: Security,
): string | undefined {
  if (security.tls) return undefined;
  const open = addresses.filter((a) => a.kind === 'tcp' && !isLoopback(a)).map(formatAddress);
  if (open.length === 0) return undefined;
  return `warning: listening in plaintext (--insecure) on ${open.join(', ')}, which other machines can reach: anyone who can connect can read what goes over it${security.token ? '' : ' and, without --token-file, take part'}; use --certs off loopback`;
}

/**
 * A token travels as a gRPC metadata value, which holds printable ASCII only: one with a line
 * break (a file of two lines) or another character was taken, and every call then failed on the
 * client with grpc-js's 'Metadata string value "..." contains illegal characters' (a worker
 * retried forever on it).
 */
function checkToken(token: string, source: string): void {
  const bad = /[^\x20-\x7e]/u.exec(token);
  if (!bad) return;
  const c = bad[0];
  throw new UsageError(
    c === '\n' || c === '\r'
      ? `${source}: the token has a line break; a token is one line`
      : `${source}: the token has ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}), at character ${bad.index + 1}; a token is printable ASCII (letters, digits, punctuation), as gRPC metadata carries it`,
  );
}
