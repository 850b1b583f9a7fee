/**
 * How cluster members reach each other: addresses (`tcp://host:port`, `unix:///path.sock`), gRPC
 * credentials (mutual TLS with the cluster CA, or plaintext where allowed), the optional shared
 * token, and servers that log refused connections instead of crashing.
 *
 * Security rules
 * - TCP is mutual TLS unless `insecure` is set explicitly: a member without TLS material may not
 *   listen on or dial a TCP address (`SecurityError`). A unix socket is protected by the file
 *   system (the socket is made 0600) and is plaintext unless TLS material is given.
 * - The server requires a client certificate chained to the CA; handshakes that fail (no
 *   certificate, another CA, expired) are logged with the reason and the connection is dropped.
 * - The certificate's role (OU: master, worker, client) is checked per method: only a master may
 *   start or stop jobs on a worker, only a worker may register with a master.
 * - With a token, every call carries `x-dist-build-token`; a wrong or missing token is
 *   UNAUTHENTICATED. Compared in constant time.
 */
import * as grpc from '@grpc/grpc-js';
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { TlsFiles } from './certs.js';
import { MAX_MESSAGE_BYTES } from './protocol.js';

export type Address = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export class SecurityError extends Error {
  override name = 'SecurityError';
}

export class AddressError extends Error {
  override name = 'AddressError';
}

/** Parses `tcp://host:port`, `tcp://[::1]:port`, `unix:///abs/path.sock` (or `unix:relative`). */
export function parseAddress(text: string): Address {
  const s = text.trim();
  if (s.startsWith('unix://') || s.startsWith('unix:')) {
    const path = s.startsWith('unix://') ? s.slice('unix://'.length) : s.slice('unix:'.length);
    if (!path) throw new AddressError(`${text}: expected unix:///path/to.sock`);
    // gRPC reads the path after unix:// as absolute: a relative one is made so here.
    return { kind: 'unix', path: resolvePath(path) };
  }
  const m = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/[\]]*):(\d{1,5})$/.exec(s);
  if (!m) {
    throw new AddressError(
      `${JSON.stringify(text)}: expected tcp://host:port or unix:///path.sock`,
    );
  }
  const port = Number(m[2]);
  if (port > 65535) throw new AddressError(`${text}: port ${port} is out of range`);
  const host = m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { kind: 'tcp', host, port };
}

export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return `tcp://${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}

/** The target string @grpc/grpc-js dials. */
export function grpcTarget(a: Address): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return `${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}

export function isLoopback(a: Address): boolean {
  if (a.kind === 'unix') return true;
  const h = a.host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

export interface Security {
  /** CA, certificate and key (PEM) of this member; undefined = plaintext. */
  tls?: TlsFiles;
  /** Allow plaintext on TCP. */
  insecure?: boolean;
  /** Shared secret every call must carry. */
  token?: string;
}

/** Throws unless `sec` may be used on `a` (see the module comment). */
export function checkSecurity(a: Address, sec: Security, what: string): void {
  if (a.kind === 'tcp' && !sec.tls && !sec.insecure) {
    throw new SecurityError(
      `${what} ${formatAddress(a)}: TCP needs mutual TLS: give --certs DIR (see \`dist-build certs init\`), or --insecure to allow plaintext` +
        (isLoopback(a) ? '' : ' (not recommended off loopback)'),
    );
  }
}

/** Options of both ends of a connection. */
const COMMON_OPTIONS = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // Keep connections to members alive cheaply; notice dead peers.
  'grpc.keepalive_time_ms': 15_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // No channelz bookkeeping (per connection and per call): nothing here reads it.
  'grpc.enable_channelz': 0,
} as const;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...COMMON_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 100,
  // One connection per client object, as separate worker processes would have (grpc-js would
  // otherwise multiplex every client of a process to one target over a single connection).
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_reconnect_backoff_ms': 2_000,
};

/** Credentials are costly to build (each parses the CA, key and certificate): one per material,
 * IP and expected role. */
const credentialCache = new WeakMap<TlsFiles, Map<string, grpc.ChannelCredentials>>();

/**
 * Credentials to dial `a`. With `serverRole`, the server's certificate must also carry that role
 * (a worker dialing its master accepts only a master certificate: jobs arrive on that connection).
 */
export function channelCredentials(
  a: Address,
  sec: Security,
  serverRole?: Role,
): grpc.ChannelCredentials {
  checkSecurity(a, sec, 'connecting to');
  if (!sec.tls) return grpc.credentials.createInsecure();
  const ip = a.kind === 'tcp' && isIP(a.host) ? a.host : undefined;
  let byKey = credentialCache.get(sec.tls);
  if (!byKey) credentialCache.set(sec.tls, (byKey = new Map()));
  const key = `${ip ?? ''}|${serverRole ?? ''}`;
  let creds = byKey.get(key);
  if (!creds) {
    creds = grpc.credentials.createSsl(
      Buffer.from(sec.tls.ca),
      Buffer.from(sec.tls.key),
      Buffer.from(sec.tls.cert),
      {
        checkServerIdentity: (host, cert) => {
          // TLS sends no IP address as server name (RFC 6066): the channel names "localhost"
          // instead (see channelOptions) and the certificate is checked against the IP here.
          const err = checkServerIdentity(ip ?? host, cert);
          if (err || !serverRole) return err;
          const role = roleOf(cert);
          return role === serverRole
            ? undefined
            : new Error(
                `the server's certificate has role ${role ?? 'none'}, expected ${serverRole}`,
              );
        },
      },
    );
    byKey.set(key, creds);
  }
  return creds;
}

/** A certificate subject field (one value, or several: the first). */
function firstOf(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

function roleOf(cert: PeerCertificate): string | null {
  return firstOf(cert.subject?.OU);
}

export function channelOptions(a: Address): grpc.ChannelOptions {
  return a.kind === 'unix' || isIP(a.host)
    ? // A unix socket has no host name: its member's certificate is checked against "localhost".
      { ...CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': 'localhost' }
    : CHANNEL_OPTIONS;
}

/** Metadata carrying the token, for every outgoing call. */
export function callMetadata(sec: Security): grpc.Metadata {
  const md = new grpc.Metadata();
  if (sec.token) md.set('x-dist-build-token', sec.token);
  return md;
}

export type Role = 'master' | 'worker' | 'client';

/** What `call.getAuthContext()` gives (grpc-js does not export the type). */
interface AuthContext {
  transportSecurityType?: string;
  sslPeerCertificate?: PeerCertificate;
}

/** The TLS socket under a server call (grpc-js internals; `undefined` if they change). */
function socketOf(callLike: object): object | undefined {
  let c = (callLike as { call?: unknown }).call as
    { stream?: { session?: { socket?: object } }; nextCall?: unknown } | undefined;
  for (let depth = 0; c && !c.stream && c.nextCall && depth < 8; depth++) {
    c = c.nextCall as typeof c;
  }
  return c?.stream?.session?.socket;
}

/** Peer identity per TLS connection: the certificate is parsed once, not on every call. */
const peerCache = new WeakMap<object, { role: string | null; name: string | null }>();

/** Role (certificate OU) and name (CN) of the peer of a call; `null`s on plaintext. */
export function peerRole(callLike: { getAuthContext?: () => AuthContext }): {
  role: string | null;
  name: string | null;
} {
  const socket = socketOf(callLike);
  const cached = socket && peerCache.get(socket);
  if (cached) return cached;
  const ctx = callLike.getAuthContext?.();
  const cert = ctx?.sslPeerCertificate;
  if (!cert) return { role: null, name: null };
  const peer = { role: roleOf(cert), name: firstOf(cert.subject?.CN) };
  if (socket) peerCache.set(socket, peer);
  return peer;
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * Checks the token and the peer's role for one call. Returns a gRPC error to answer with, or null.
 * `roles` empty = any authenticated peer.
 */
export function authorize(
  callLike: { metadata: grpc.Metadata; getAuthContext?: () => AuthContext },
  sec: Security,
  roles: readonly Role[],
  method: string,
): (grpc.ServiceError & { reason: string }) | null {
  const fail = (code: grpc.status, reason: string) =>
    Object.assign(new Error(reason), {
      code,
      details: reason,
      metadata: new grpc.Metadata(),
      reason,
    }) as grpc.ServiceError & { reason: string };
  if (sec.token) {
    const got = callLike.metadata.get('x-dist-build-token')[0];
    if (typeof got !== 'string' || !sameSecret(got, sec.token)) {
      return fail(
        grpc.status.UNAUTHENTICATED,
        `${method}: ${got === undefined ? 'missing' : 'wrong'} token`,
      );
    }
  }
  if (sec.tls && roles.length) {
    const { role, name } = peerRole(callLike);
    if (!role || !roles.includes(role as Role)) {
      return fail(
        grpc.status.PERMISSION_DENIED,
        `${method}: certificate ${name ?? '?'} has role ${role ?? 'none'}, expected ${roles.join(' or ')}`,
      );
    }
  }
  return null;
}

/**
 * A call `authorize` refused, as one log line: the reason (which names the method) and who made
 * the call (address, certificate name), so that a wrong token can be traced to its sender.
 */
export function refusedCall(
  callLike: Parameters<typeof authorize>[0] & { getPeer?: () => string },
  reason: string,
): string {
  const { name } = peerRole(callLike);
  const peer = callLike.getPeer?.(); // "unknown" on a unix socket
  const who = [peer && peer !== 'unknown' && `from ${peer}`, name && `certificate ${name}`];
  const from = who.filter(Boolean).join(', ');
  return `refused ${reason}${from ? ` (${from})` : ''}`;
}

/**
 * Why a call to the master did not connect, readable: grpc-js wraps OpenSSL's words ("self-signed
 * certificate in certificate chain", "wrong version number") in its own, with a "Resolution note"
 * tail. The problems an operator makes (certificates of another CA, TLS on one side only, an
 * expired or misnamed certificate) are said as such; anything else is the error's own text.
 */
export function connectProblem(detail: string, tls: boolean, who = 'this worker'): string {
  const text = detail.replace(/\s*Resolution note:.*$/s, '').trim();
  // A gRPC server without the Master service: a worker's own service, say.
  if (/does not implement the method \/dist_build\.v1\.Master\//.test(text)) {
    return `no dist-build master there (the server has no Master service: the address of a worker's --listen?): ${text}`;
  }
  if (
    tls &&
    /self[- ]signed certificate|unable to verify|unable to get local issuer|certificate signature failure/i.test(
      text,
    )
  ) {
    return `the master's certificate is not from ${who}'s CA (--certs: a master set up with another \`dist-build certs init\`?): ${text}`;
  }
  if (tls && /wrong version number|packet length too long|http request/i.test(text)) {
    return `the master does not speak TLS (started with --insecure?): give both sides --certs, or both --insecure: ${text}`;
  }
  if (tls && /certificate has expired/i.test(text)) {
    return `the master's certificate has expired: issue it again with \`dist-build certs issue\`: ${text}`;
  }
  if (tls && /altname|does not match certificate|hostname\/ip does not match/i.test(text)) {
    return `the master's certificate does not name the host ${who} dials (issue it with \`--host\`): ${text}`;
  }
  // grpc-js's words for a connection closed before HTTP/2 started, with no error of its own: a
  // TLS server (the master) given a plaintext client (--insecure) ends it so.
  if (!tls && /Failed to connect \(/.test(text)) {
    return `the connection was closed before it was set up (a master that uses TLS? then give --certs too): ${text}`;
  }
  return text;
}

const serverCredentialCache = new WeakMap<TlsFiles, grpc.ServerCredentials>();

/** Requires a client certificate from the CA; one credentials object per TLS material. */
function serverCredentials(sec: Security): grpc.ServerCredentials {
  if (!sec.tls) return grpc.ServerCredentials.createInsecure();
  let creds = serverCredentialCache.get(sec.tls);
  if (!creds) {
    creds = grpc.ServerCredentials.createSsl(
      Buffer.from(sec.tls.ca),
      [{ private_key: Buffer.from(sec.tls.key), cert_chain: Buffer.from(sec.tls.cert) }],
      true,
    );
    serverCredentialCache.set(sec.tls, creds);
  }
  return creds;
}

let bindErrorsQuiet = false;

/**
 * grpc-js prints "E No address added out of total 1 resolved" on stderr by itself when a bind
 * fails (a port in use), before the error that startServer reports: that line is dropped; every
 * other grpc-js message is printed as its default logger does.
 */
function quietBindErrors(): void {
  if (bindErrorsQuiet) return;
  bindErrorsQuiet = true;
  const print =
    (prefix: string) =>
    (message?: unknown, ...rest: unknown[]): void => {
      if (typeof message === 'string' && message.startsWith('No address added out of total'))
        return;
      console.error(`${prefix}${String(message)}`, ...rest);
    };
  grpc.setLogger({ error: print('E '), info: print('I '), debug: print('D ') });
}

export interface ServerHandle {
  server: grpc.Server;
  /** Bound addresses, with the real port for `:0`. */
  addresses: Address[];
  close(): Promise<void>;
}

/**
 * Starts a gRPC server for `services` on every address. Removes a stale unix socket file first
 * (only a socket, never another kind of file) and makes the socket 0600.
 */
export async function startServer(
  addresses: Address[],
  services: { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation }[],
  sec: Security,
  log: (message: string) => void,
): Promise<ServerHandle> {
  const server = new grpc.Server(COMMON_OPTIONS);
  for (const s of services) server.addService(s.definition, s.handlers);
  const bound: Address[] = [];
  for (const a of addresses) {
    checkSecurity(a, sec, 'listening on');
    if (a.kind === 'unix' && existsSync(a.path)) {
      if (!lstatSync(a.path).isSocket()) {
        throw new AddressError(`${formatAddress(a)}: ${a.path} exists and is not a socket`);
      }
      unlinkSync(a.path);
    }
    const creds = serverCredentials(sec);
    quietBindErrors();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(grpcTarget(a), creds, (err, p) => (err ? reject(err) : resolve(p))),
    ).catch((err: Error) => {
      server.forceShutdown();
      // grpc-js: "No address added out of total 1 resolved errors: [listen EADDRINUSE: ...]".
      const why = /errors: \[(?:listen )?(.*)\]$/s.exec(err.message)?.[1] || err.message;
      throw new AddressError(`cannot listen on ${formatAddress(a)}: ${why}`);
    });
    if (a.kind === 'unix') {
      try {
        chmodSync(a.path, 0o600);
      } catch (err) {
        server.forceShutdown();
        throw new AddressError(`cannot listen on ${formatAddress(a)}: ${(err as Error).message}`);
      }
      bound.push(a);
    } else bound.push({ ...a, port });
  }
  logRefusedHandshakes(server, log);
  return {
    server,
    addresses: bound,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/**
 * grpc-js drops TLS handshakes that fail without telling the application; its http2 servers emit
 * `tlsClientError`, which we log. The server list is internal to grpc-js, so this degrades to no
 * logging (never to an error) if it changes.
 */
function logRefusedHandshakes(server: grpc.Server, log: (message: string) => void): void {
  const servers = (server as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  // The peer of each connection, noted when it arrives: by the time a handshake fails the socket
  // may be closed, and a closed TCP socket no longer knows its peer.
  const peers = new WeakMap<object, string>();
  for (const http2Server of servers.keys()) {
    const s = http2Server as {
      on?: (ev: string, fn: (a: never, b: never) => void) => void;
    };
    s.on?.('connection', (raw: Socket) => {
      peers.set(raw, raw.remoteAddress ? `${raw.remoteAddress}:${raw.remotePort}` : 'unix socket');
    });
    s.on?.('tlsClientError', (err: Error, socket: TLSSocket) => {
      const raw = (socket as TLSSocket & { _parent?: object })?._parent;
      const from =
        (raw && peers.get(raw)) ??
        (socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unknown peer');
      // Node closes a connection whose client certificate fails verification without an error
      // of its own; the reason is left on the socket.
      const why = (socket as TLSSocket & { authorizationError?: string | Error })
        ?.authorizationError;
      log(
        `refused connection from ${from}: ${tlsReason(why ? Object.assign(new Error(String(why)), { code: String(why) }) : err)}`,
      );
    });
  }
}

function tlsReason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const msg = err.message;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|peer did not return a certificate/i.test(code + msg))
    return 'no client certificate';
  if (/CERT_HAS_EXPIRED|CERTIFICATE_EXPIRED|certificate has expired/i.test(code + msg))
    return 'client certificate expired';
  if (
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE|unable to verify|unknown ca|self.signed|certificate signature failure|UNABLE_TO_GET_ISSUER_CERT/i.test(
      code + msg,
    )
  )
    return `client certificate not from the cluster CA (${msg})`;
  // The client closed the connection in the handshake: typically it did not accept this side's
  // certificate (not "refused" by this side, as a bare "socket hang up" made it look).
  if (/socket hang up|ECONNRESET/i.test(code + msg))
    return "the client hung up during the TLS handshake (it did not accept this side's certificate: its --certs has another CA, or it dials a host the certificate does not name?)";
  // OpenSSL's words for bytes that are no TLS record: a client that speaks plaintext.
  if (
    /wrong[_ ]version[_ ]number|http[_ ]request|packet[_ ]length[_ ]too[_ ]long/i.test(code + msg)
  )
    return 'not TLS: a plaintext client (started with --insecure?); give both sides --certs, or both --insecure';
  return msg.trim() || code || 'TLS handshake failed';
}

/**
 * Ends a server stream (server-streaming or bidirectional call) with an error status, after the
 * messages already written. grpc-js sends a stream's status only when the stream ends:
 * `call.destroy(err)` ends nothing, so the client would wait for a status forever.
 */
export function failStream(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  code: grpc.status,
  details: string,
): void {
  call.emit('error', { code, details, metadata: new grpc.Metadata() });
}
