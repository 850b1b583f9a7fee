// The `dist-build` executable (bundled to dist/cli.js).
import { main } from './main.js';

// Output piped into a reader that stops early (`dist-build plan | head`), or a terminal that was
// closed (EIO: a run stopping after its SIGHUP prints its table there): what is left to print
// goes nowhere, quietly, and the command finishes as it would have (its clean-up and exit code
// included), instead of dying of an unhandled EPIPE or EIO.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'EIO') throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));

// The command is over. A connection grpc-js does not end when its client is closed (a TLS
// handshake the peer never answers: `status` against a stopped master) must not keep the process
// alive: past a short grace, exit, once what is still being printed is out.
const exitSoon = (): void => {
  if (process.stdout.writableLength || process.stderr.writableLength)
    setTimeout(exitSoon, 100).unref();
  else process.exit();
};
setTimeout(exitSoon, 2000).unref();
