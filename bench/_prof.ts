// temporary profiling driver (deleted after use)
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { blobOpenerFor, restoreOutputs, saveOutputs } from '../src/store/pack.js';
import { RegistryStore } from '../src/store/registry.js';
import { startRegistry } from '../__tests__/helpers/registry.js';

const what = process.argv[2] ?? 'local';
const small = Number(process.argv[3] ?? 5000);
const largeMiB = Number(process.argv[4] ?? 40);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prof-'));
const root = path.join(tmp, 'tree');
const buf = Buffer.alloc(4 << 20);
for (let i = 0; i < small; i++) {
  const d = path.join(root, 'out/small', `d${Math.floor(i / 100)}`);
  if (i % 100 === 0) fs.mkdirSync(d, { recursive: true });
  const b = buf.subarray(0, 1024 + ((i * 7919) % (63 * 1024)));
  randomFillSync(b);
  fs.writeFileSync(path.join(d, `f${i}`), b);
}
fs.mkdirSync(path.join(root, 'out/large'), { recursive: true });
for (let i = 0; i < 4; i++) {
  const fd = fs.openSync(path.join(root, 'out/large', `b${i}`), 'w');
  for (let j = 0; j < largeMiB / 4; j++) fs.writeSync(fd, randomFillSync(buf));
  fs.closeSync(fd);
}
let peak = 0;
const iv = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
const t = async (name: string, fn: () => Promise<unknown>) => {
  peak = 0;
  const s = performance.now();
  await fn();
  console.log(name, (performance.now() - s).toFixed(0), 'ms, peak rss', (peak / 2 ** 20).toFixed(0), 'MiB');
};
const outs = ['out/small', 'out/large'];
try {
  if (what === 'local') {
    const store = await LocalStore.open(path.join(tmp, 'store'));
    let e: Awaited<ReturnType<typeof saveOutputs>> = [];
    await t('save', async () => (e = await saveOutputs(store, root, outs)));
    const r = path.join(tmp, 'r');
    fs.mkdirSync(r);
    await t('restore', () => restoreOutputs(blobOpenerFor(store), r, e));
  } else {
    const reg = await startRegistry();
    try {
      const store = new RegistryStore({ ref: `${reg.host}/p/x` });
      let e: Awaited<ReturnType<typeof saveOutputs>> = [];
      await t('push', async () => (e = await saveOutputs(store, root, outs)));
      const r = path.join(tmp, 'r');
      fs.mkdirSync(r);
      await t('pull', () => restoreOutputs(blobOpenerFor(store), r, e));
    } finally {
      await reg.stop();
    }
  }
} finally {
  clearInterval(iv);
  fs.rmSync(tmp, { recursive: true, force: true });
}
