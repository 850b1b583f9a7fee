/**
 * Digest helpers shared by the store backends and the packer: `sha256:<hex>` of bytes as they
 * stream past, and verified streams, which end with a `CorruptBlobError` instead of a normal end
 * when the bytes do not hash to the digest they were asked for.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { HashPipe, SLOT } from './hash-pipe.js';
import { CorruptBlobError } from './types.js';

/** Marks a stream made by `verifiedStream`, with the digest it verifies. */
const VERIFIED = Symbol.for('dist-build.store.verified-digest');

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * `source`'s bytes, each chunk fed to `pipe` before it is passed on: big streams are hashed on the
 * hashing thread while the consumer works on the chunks.
 */
export async function* hashedChunks(
  source: AsyncIterable<Buffer | string> | NodeJS.ReadableStream,
  pipe: HashPipe,
): AsyncGenerator<Buffer> {
  for await (const chunk of source as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const wait = pipe.update(buf);
    if (wait) await wait;
    yield buf;
  }
}

/** The digest and size of a byte stream, read to its end. */
export async function digestStream(
  data: AsyncIterable<Buffer | string> | NodeJS.ReadableStream,
): Promise<{ digest: string; size: number }> {
  const pipe = new HashPipe();
  try {
    let size = 0;
    for await (const buf of hashedChunks(data, pipe)) size += buf.length;
    return { digest: await pipe.digest(), size };
  } finally {
    pipe.dispose();
  }
}

/**
 * Passes `source` through while hashing it. At the end, if the bytes hash to something else than
 * `digest`, `onCorrupt` runs (and is awaited) and the stream ends with a `CorruptBlobError`
 * instead of `end`. The source is only read as the returned stream is read (nothing happens, and
 * no error can go unseen, before a consumer is attached); destroying it destroys the source.
 */
export function verifiedStream(
  source: NodeJS.ReadableStream | Readable,
  digest: string,
  onCorrupt?: (err: CorruptBlobError) => void | Promise<void>,
): Readable {
  async function* verify(): AsyncGenerator<Buffer> {
    const pipe = new HashPipe();
    let actual: string;
    try {
      yield* hashedChunks(source, pipe);
      actual = await pipe.digest();
    } finally {
      pipe.dispose();
    }
    if (actual === digest) return;
    const err = new CorruptBlobError(digest, actual);
    await Promise.resolve()
      .then(() => onCorrupt?.(err))
      .catch(() => {});
    throw err;
  }
  const stream = Readable.from(verify(), { objectMode: false });
  (stream as unknown as Record<symbol, string>)[VERIFIED] = digest;
  return stream;
}

/** Whether `stream` came from `verifiedStream(..., digest)` (so hashing it again is wasted). */
export function isVerifiedFor(stream: unknown, digest: string): boolean {
  if (stream instanceof VerifiedFileChunks) return stream.digest === digest;
  return (
    typeof stream === 'object' &&
    stream !== null &&
    (stream as Record<symbol, unknown>)[VERIFIED] === digest
  );
}

/**
 * A blob file's bytes read straight into hashing slots, verified against `digest`: chunks that
 * are valid only until the next one is asked for, for a consumer that is done with each chunk
 * when it asks for the next (extraction writes it out at once). Saves the copy and the stream
 * machinery of `verifiedStream` over a file stream. The file is read with plain `read` calls; the
 * event loop gets a turn every `YIELD_MS`. At the end, bytes that do not hash to `digest` run
 * `onCorrupt` and throw a `CorruptBlobError`. `destroy()` closes the file when the chunks are not
 * read to the end (the iteration's own end closes it otherwise).
 */
export class VerifiedFileChunks implements AsyncIterable<Buffer> {
  private started = false;
  private closed = false;

  constructor(
    private readonly handle: FileHandle,
    readonly digest: string,
    private readonly onCorrupt?: (err: CorruptBlobError) => void | Promise<void>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.started) throw new Error("a blob's chunks are read once");
    this.started = true;
    return this.chunks();
  }

  destroy(): void {
    if (!this.started) void this.close();
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    const pipe = new HashPipe();
    const fd = this.handle.fd;
    let actual: string;
    try {
      let turn = Date.now();
      for (;;) {
        const buf = await pipe.acquire();
        let n = 0;
        for (let r = 1; n < SLOT && r > 0; n += r) r = readSync(fd, buf, n, SLOT - n, null);
        let consumed!: () => void;
        pipe.submit(buf, n, n ? new Promise<void>((r) => (consumed = r)) : undefined);
        if (n === 0) break;
        try {
          yield buf.subarray(0, n);
        } finally {
          consumed();
        }
        if (n < SLOT) break;
        if (Date.now() - turn >= YIELD_MS) {
          await new Promise((r) => setImmediate(r));
          turn = Date.now();
        }
      }
      actual = await pipe.digest();
    } finally {
      pipe.dispose();
      await this.close();
    }
    if (actual === this.digest) return;
    const err = new CorruptBlobError(this.digest, actual);
    await Promise.resolve()
      .then(() => this.onCorrupt?.(err))
      .catch(() => {});
    throw err;
  }
}

/** How long reading a blob's chunks runs before the event loop gets a turn (heartbeats). */
const YIELD_MS = 20;
