/**
 * The definition digest of an invocation: what a worker checks before it runs anything. A master
 * names the invocation and the digest of its definition; the worker runs it only if its own copy
 * of the config has an invocation of that name with the same digest, so a master (or anyone who
 * got hold of a master certificate) cannot make a worker run a command of its choosing.
 */
import crypto from 'node:crypto';
import type { Config, InvocationConfig } from '../config/types.js';
import { canonicalJson } from '../plan/keys.js';

type Json = string | null | Json[] | { [key: string]: Json };

const str = (v: number | undefined): string | null => (v === undefined ? null : String(v));
const pairs = (r: Record<string, string>): Json => Object.entries(r).map(([k, v]) => [k, v]);

/** `sha256:<hex>` over everything that decides what the invocation runs and produces. */
export function definitionDigest(inv: InvocationConfig): string {
  const doc: Json = {
    format: 'dist-build/definition/v1',
    name: inv.name,
    run: inv.run ?? null,
    docker: inv.docker
      ? {
          context: inv.docker.context,
          file: inv.docker.file,
          target: inv.docker.target ?? null,
          platforms: inv.docker.platforms,
          tags: inv.docker.tags,
          buildArgs: pairs(inv.docker.buildArgs),
          // Only when set, so that the digests of definitions without it stay as they were.
          ...(inv.docker.network ? { network: inv.docker.network } : {}),
          ...(inv.docker.push ? { push: 'true' } : {}),
        }
      : null,
    inputs: inv.inputs,
    outputs: inv.outputs,
    needs: inv.needs,
    env: pairs(inv.env),
    platform: inv.platform ?? null,
    timeout: str(inv.timeout),
  };
  return 'sha256:' + crypto.createHash('sha256').update(canonicalJson(doc)).digest('hex');
}

/** Digest of the whole config (informational, in Register): its invocations' digests in order. */
export function configDigest(config: Config): string {
  const h = crypto.createHash('sha256');
  for (const inv of config.invocations) h.update(`${inv.name}\0${definitionDigest(inv)}\n`);
  return 'sha256:' + h.digest('hex');
}
