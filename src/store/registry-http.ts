/**
 * The HTTP layer of the registry store: one request, its body streamed in and its answer streamed
 * out as a Node stream.
 *
 * By default requests go through `node:http` / `node:https` with keep-alive agents shared by all
 * stores of the process. Bodies are piped into the socket with its backpressure (a file range is
 * read from disk as the socket drains) and answers come back as the `IncomingMessage` itself: no
 * web-stream layers, which made blob transfers through `fetch` several times slower than `curl`
 * and buffered whole chunks. TLS is Node's default, as it was with `fetch`: the bundled CA roots
 * plus `NODE_EXTRA_CA_CERTS`, certificates always verified (`insecure` means plain http, not
 * unverified https).
 *
 * A `fetch` can be given instead (tests, fakes): `fetchTransport` adapts it to the same shape.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/** An answer of the registry (or of wherever a redirect led). */
export interface HttpAnswer {
  /** The request's method (a HEAD answer has no body whatever its Content-Length). */
  method: string;
  status: number;
  /** 2xx */
  ok: boolean;
  /** The URL asked (redirects are not followed here). */
  url: string;
  headers: { get(name: string): string | null };
  /** The body (empty for HEAD and bodiless answers); read it, or `discard` it. */
  body: Readable;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** The body: bytes, or a stream made for this attempt (a file range). */
  body?: Buffer | Readable;
  /**
   * Longest wait without progress before the answer's headers (connecting, sending the body, the
   * server thinking): the request fails with a `timed out` error after that.
   */
  timeoutMs: number;
  /**
   * The wait for the answer once the whole body has gone out, if not `timeoutMs`; 0: no limit
   * (a registry may take its time to store a large blob, on S3 a copy).
   */
  afterBodyTimeoutMs?: number;
}

export type Transport = (req: HttpRequest) => Promise<HttpAnswer>;

/**
 * A request that failed on the way (connection, TLS, timeout); `code` is the system error code
 * (`ECONNREFUSED`) when there is one. A body that could not be read fails with its own error.
 */
export class HttpError extends Error {
  readonly code: string | undefined;
  /** The request went out on a kept-alive connection (a reset there is worth one replay). */
  readonly reusedSocket: boolean;
  constructor(message: string, code: string | undefined, reusedSocket: boolean, cause?: unknown) {
    super(message, cause !== undefined ? { cause } : undefined);
    this.name = 'HttpError';
    this.code = code;
    this.reusedSocket = reusedSocket;
  }
}

const agents = {
  http: new HttpAgent({ keepAlive: true, scheduling: 'lifo' }),
  https: new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }),
};

/** Requests with `node:http` / `node:https`. */
export const nodeTransport: Transport = (spec) =>
  new Promise<HttpAnswer>((resolve, reject) => {
    const https = spec.url.protocol === 'https:';
    const request = https ? httpsRequest : httpRequest;
    const req = request(spec.url, {
      method: spec.method,
      headers: spec.headers,
      agent: https ? agents.https : agents.http,
    });
    let answered = false;
    let sent = false;
    let sourceError: Error | undefined;
    const source = spec.body instanceof Readable ? spec.body : undefined;
    const fail = (err: Error & { code?: string }) => {
      source?.destroy();
      if (answered) return; // the answer's stream reports it
      answered = true;
      // The body could not be read (a file gone): that error as it is, not a network one.
      if (sourceError) return reject(sourceError);
      const code = err.code;
      // OpenSSL's words for a server that answered the TLS hello in plain HTTP.
      const plain = https && /wrong version number/i.test(err.message);
      reject(
        new HttpError(
          plain
            ? 'the server does not speak TLS (a plain-http registry needs insecure: true)'
            : err.message === 'socket hang up' && code
              ? `${code} (socket hang up)`
              : err.message.trim(),
          code,
          req.reusedSocket,
          err,
        ),
      );
    };
    req.setTimeout(spec.timeoutMs, () => {
      req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      req.setTimeout(0);
      if (!sent && source) {
        // Answered before the whole body went out (a refusal): stop sending; the connection
        // cannot be reused, so it goes once the answer has been read.
        source.unpipe(req);
        source.destroy();
        const close = () => req.destroy();
        res.once('end', close);
        res.once('close', close);
      }
      resolve(answerOf(res, spec));
    });
    req.on('finish', () => {
      sent = true;
      if (!answered && spec.afterBodyTimeoutMs !== undefined) {
        req.setTimeout(spec.afterBodyTimeoutMs);
      }
    });
    if (source) {
      source.once('error', (err) => {
        sourceError = err;
        req.destroy(err);
      });
      source.pipe(req);
    } else {
      req.end(spec.body);
    }
  });

function answerOf(res: IncomingMessage, spec: HttpRequest): HttpAnswer {
  const status = res.statusCode ?? 0;
  // A body that is empty by definition is read off at once: the connection goes back to the
  // pool only when the answer has ended, and callers of a HEAD need no more than its headers.
  if (
    spec.method === 'HEAD' ||
    status === 204 ||
    status === 304 ||
    res.headers['content-length'] === '0'
  ) {
    res.resume();
  }
  return {
    method: spec.method,
    status,
    ok: status >= 200 && status < 300,
    url: spec.url.href,
    headers: {
      get(name: string): string | null {
        const v = res.headers[name.toLowerCase()];
        if (v === undefined) return null;
        return Array.isArray(v) ? v.join(', ') : v;
      },
    },
    body: res,
  };
}

/** Requests with a `fetch` (tests); bodies are sent as web streams with `duplex: 'half'`. */
export function fetchTransport(fetchImpl: typeof fetch): Transport {
  return async (spec) => {
    const controller = new AbortController();
    // One limit for the whole exchange here (fetch tells nothing of the body's progress).
    const timer =
      spec.afterBodyTimeoutMs === 0
        ? undefined
        : setTimeout(
            () => controller.abort(Object.assign(new Error('timed out'), { name: 'TimeoutError' })),
            spec.timeoutMs + (spec.afterBodyTimeoutMs ?? 0),
          );
    let res: Response;
    try {
      const body =
        spec.body instanceof Readable
          ? (Readable.toWeb(spec.body) as unknown as ReadableStream<Uint8Array>)
          : spec.body;
      res = await fetchImpl(spec.url, {
        method: spec.method,
        headers: spec.headers,
        body: body as RequestInit['body'],
        redirect: 'manual',
        signal: controller.signal,
        ...(spec.body instanceof Readable ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      if (spec.body instanceof Readable) spec.body.destroy();
      const e = err as { name?: string; message?: string; cause?: { code?: string } };
      const timedOut = e?.name === 'TimeoutError' || e?.name === 'AbortError';
      const code = timedOut ? 'ETIMEDOUT' : e?.cause?.code;
      throw new HttpError(
        timedOut ? 'timed out' : (code ?? e?.message ?? String(err)),
        code,
        false,
        err,
      );
    } finally {
      clearTimeout(timer);
    }
    return {
      method: spec.method,
      status: res.status,
      ok: res.ok,
      url: res.url || spec.url.href,
      headers: res.headers,
      body: res.body
        ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)
        : Readable.from([]),
    };
  };
}

/**
 * Drops an answer's body: a small one is read off, and the promise settles when it has ended (the
 * connection is then back in the pool for the next request); a large one is cut off.
 */
export function discard(res: HttpAnswer): Promise<void> {
  const body = res.body;
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  const header = res.headers.get('content-length');
  const length = res.method === 'HEAD' ? 0 : header === null ? NaN : Number(header);
  if (!(Number.isFinite(length) && length <= 64 * 1024)) {
    body.destroy();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    body.once('end', resolve);
    body.once('close', resolve);
    body.once('error', () => resolve());
    body.resume();
  });
}

/** Reads at most `max` bytes of an answer's body as text; more is an error (and is dropped). */
export function readText(res: HttpAnswer, max: number): Promise<string> {
  return readCappedText(res.body as AsyncIterable<Buffer | string>, max, () => res.body.destroy());
}

/**
 * Reads at most `max` bytes of `body` (a Node or web stream) as text; more is an error, after
 * `drop` has let go of the rest.
 */
export async function readCappedText(
  body: AsyncIterable<Uint8Array | string>,
  max: number,
  drop: () => void,
): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size += buf.length;
    if (size > max) {
      drop();
      throw new Error(`response larger than ${max} bytes`);
    }
    parts.push(buf);
  }
  return Buffer.concat(parts).toString('utf8');
}
