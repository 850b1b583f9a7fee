import { Option } from 'commander';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CA_CERT_FILE,
  CERT_ROLES,
  CertError,
  DEFAULT_CA_DAYS,
  DEFAULT_CA_NAME,
  DEFAULT_CERT_DAYS,
  DEFAULT_CERT_DIR,
  certSummary,
  checkCertName,
  createCA,
  dirFlag,
  issueCert,
  issuedBy,
  listCerts,
  readCA,
  writeCA,
  writeCert,
} from '../../cluster/certs.js';
import type { CertRole } from '../../cluster/certs.js';
import { UsageError } from '../errors.js';

interface InitFlags {
  dir: string;
  days?: string;
  name: string;
  force?: boolean;
}
interface IssueFlags {
  name?: string;
  role: CertRole;
  host?: string[];
  days?: string;
  dir: string;
}
interface ShowFlags {
  dir: string;
}

function days(flag: string | undefined, fallback: number): number {
  if (flag === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(flag) || Number(flag) > 36_500)
    throw new UsageError(`--days: expected a whole number from 1 to 36500, got "${flag}"`);
  return Number(flag);
}

function certName(name: string, flag: string): string {
  try {
    checkCertName(name);
  } catch (err) {
    if (err instanceof CertError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
  return name;
}

const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];

const out = (s: string): void => void process.stdout.write(`${s}\n`);

function describe(label: string, pem: string, status: string): string {
  const s = certSummary(pem);
  return [
    `${label}:`,
    `  subject:     ${s.subject}`,
    `  role:        ${s.role ?? 'CA'}`,
    `  valid:       ${s.notBefore.toISOString()} .. ${s.notAfter.toISOString()} (${status})`,
    `  fingerprint: SHA256 ${s.fingerprint}`,
    ...(s.hosts.length ? [`  hosts:       ${s.hosts.join(', ')}`] : []),
  ].join('\n');
}

function validity(pem: string): string {
  const { notBefore, notAfter } = certSummary(pem);
  const now = Date.now();
  if (notAfter.getTime() <= now) return 'EXPIRED';
  if (notBefore.getTime() > now) return 'NOT YET VALID';
  const left = Math.floor((notAfter.getTime() - now) / 86_400_000);
  return `${left} day${left === 1 ? '' : 's'} left`;
}

async function readCert(file: string, hint: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CertError(`${file} not found: ${hint}`);
    throw err;
  }
}

export function registerCerts(program: Command): void {
  const certs = program
    .command('certs')
    .description(
      'Manage the mutual-TLS certificates of a cluster: one CA, and a certificate for the master, each worker and clients.',
    )
    .addHelpText(
      'after',
      `
The master and the workers talk gRPC over mutual TLS: each presents a certificate issued by the
cluster CA and checks the other's. \`dist-build run\` makes throwaway certificates by itself;
these commands are for long-lived clusters.

Examples:
  $ dist-build certs init
  $ dist-build certs issue --name master --role master --host build-master.internal
  $ dist-build certs issue --name worker-1 --host 10.0.0.11
  $ dist-build certs show`,
    );

  certs
    .command('init')
    .description(
      'Create the cluster CA (ECDSA P-256): ca.pem (share with every machine) and ca-key.pem (keep secret).',
    )
    .option('--dir <dir>', 'directory for the certificates', DEFAULT_CERT_DIR)
    .option('--days <n>', `CA validity in days (default: ${DEFAULT_CA_DAYS})`)
    .option('--name <cn>', 'the CA common name', DEFAULT_CA_NAME)
    .option('--force', 'replace an existing CA (every certificate it issued stops working)')
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build certs init
  $ dist-build certs init --dir /etc/dist-build/certs --days 730 --name "ci cluster CA"`,
    )
    .action(async (flags: InitFlags) => {
      const d = days(flags.days, DEFAULT_CA_DAYS);
      const ca = await createCA({ name: flags.name, days: d });
      const { certFile, keyFile } = await writeCA(flags.dir, ca, { force: !!flags.force });
      out(`wrote ${certFile} (CA certificate: copy to every machine of the cluster)`);
      out(`wrote ${keyFile} (CA private key: keep it secret, only \`certs issue\` needs it)`);
      out('');
      out(`${describe('ca', ca.cert, validity(ca.cert))}`);
      out('');
      out('next: issue certificates for the master and each worker, e.g.');
      out(`  dist-build certs issue --name master --role master${dirFlag(flags.dir)}`);
      out(`  dist-build certs issue --name worker-1${dirFlag(flags.dir)}`);
    });

  certs
    .command('issue')
    .description(
      'Issue a certificate signed by the cluster CA: <name>.pem and <name>-key.pem (replacing earlier ones).',
    )
    .requiredOption('--name <name>', 'certificate name: common name and file name')
    .addOption(
      new Option('--role <role>', 'what the certificate is for')
        .choices([...CERT_ROLES])
        .default('worker'),
    )
    .option(
      '--host <host>',
      'a DNS name or IP address the machine is reached at, repeatable or comma-separated (localhost, 127.0.0.1 and ::1 are always included)',
      collect,
    )
    .option('--days <n>', `validity in days (default: ${DEFAULT_CERT_DAYS})`)
    .option('--dir <dir>', 'directory with the CA and for the certificate', DEFAULT_CERT_DIR)
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build certs issue --name master --role master --host build-master.internal
  $ dist-build certs issue --name worker-1 --host 10.0.0.11 --host worker-1.internal
  $ dist-build certs issue --name ci-client --role client --days 7`,
    )
    .action(async (flags: IssueFlags) => {
      const name = certName(flags.name ?? '', '--name');
      const d = days(flags.days, DEFAULT_CERT_DAYS);
      const ca = await readCA(flags.dir);
      const pair = await issueCert(ca, {
        name,
        role: flags.role,
        hosts: flags.host ?? [],
        days: d,
      });
      const { certFile, keyFile } = await writeCert(flags.dir, name, pair);
      out(`wrote ${certFile}`);
      out(`wrote ${keyFile} (private key: keep it on the machine that uses it)`);
      out('');
      out(describe(name, pair.cert, validity(pair.cert)));
      const s = certSummary(pair.cert);
      if (s.notAfter.getTime() < Date.now() + d * 86_400_000 - 120_000)
        out(`note: shortened to end with the CA (${s.notAfter.toISOString()})`);
    });

  certs
    .command('show')
    .description(
      'Print subject, role, validity, fingerprint and hosts of the CA and every certificate (or one).',
    )
    .argument('[name]', 'only this certificate ("ca" for the CA)')
    .option('--dir <dir>', 'directory with the certificates', DEFAULT_CERT_DIR)
    .addHelpText(
      'after',
      `
Examples:
  $ dist-build certs show
  $ dist-build certs show worker-1 --dir /etc/dist-build/certs`,
    )
    .action(async (name: string | undefined, flags: ShowFlags) => {
      const init = `create the CA with \`dist-build certs init${dirFlag(flags.dir)}\``;
      const caFile = join(flags.dir, CA_CERT_FILE);
      const ca = await readCert(caFile, init);
      const blocks: string[] = [];
      if (name === undefined || name === 'ca')
        blocks.push(describe(`ca (${caFile})`, ca, validity(ca)));
      const names = name === undefined ? await listCerts(flags.dir) : name === 'ca' ? [] : [name];
      for (const n of names) {
        certName(n, 'name');
        const file = join(flags.dir, `${n}.pem`);
        const pem = await readCert(
          file,
          `issue it with \`dist-build certs issue --name ${n}${dirFlag(flags.dir)}\``,
        );
        const status = (await issuedBy(pem, ca)) ? validity(pem) : 'NOT ISSUED BY THIS CA';
        blocks.push(describe(`${n} (${file})`, pem, status));
      }
      if (name === undefined && names.length === 0)
        blocks.push(
          `no certificates yet: \`dist-build certs issue --name <name>${dirFlag(flags.dir)}\``,
        );
      out(blocks.join('\n\n'));
    });
}
