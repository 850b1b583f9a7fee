import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { chunksOf } from '../../src/cluster/worker.js';

/** A stand-in for grpc-js's ClientReadableStream: object mode, `{data}` messages. */
function call(): Readable {
  return new Readable({ objectMode: true, read() {} });
}

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('chunksOf (a FetchBlob call as bytes)', () => {
  it('passes the messages on as bytes, dropping empty ones', async () => {
    const c = call();
    const bytes = chunksOf(c as never);
    c.push({ data: Buffer.from('ab') });
    c.push({ data: Buffer.alloc(0) });
    c.push({ data: Buffer.from('c') });
    c.push(null);
    expect((await drain(bytes)).toString()).toBe('abc');
  });

  it('a call that fails before anything reads it is an error when read, not a crash or a short blob', async () => {
    const c = call();
    const bytes = chunksOf(c as never);
    // What grpc-js does when the peer is gone: end the stream, then emit the status as an error.
    c.push({ data: Buffer.from('part') });
    c.push(null);
    c.emit('error', new Error('14 UNAVAILABLE: connect ECONNREFUSED'));
    await new Promise((r) => setTimeout(r, 20));
    await expect(drain(bytes)).rejects.toThrow('UNAVAILABLE');
  });

  it('a call that fails while being read is an error', async () => {
    const c = call();
    const bytes = chunksOf(c as never);
    c.push({ data: Buffer.from('part') });
    const reading = drain(bytes);
    await new Promise((r) => setTimeout(r, 20));
    c.push(null);
    c.emit('error', new Error('13 INTERNAL: stream reset'));
    await expect(reading).rejects.toThrow('INTERNAL');
  });
});
