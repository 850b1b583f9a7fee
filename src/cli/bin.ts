// The `dist-build` executable (bundled to dist/cli.js).
import { main } from './main.js';

// Output piped into a reader that stops early (`dist-build plan | head`): stop quietly, as
// command-line tools do, instead of dying with an unhandled EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
