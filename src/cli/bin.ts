// The `dist-build` executable (bundled to dist/cli.js).
import { main } from './main.js';

// Output piped into a reader that stops early (`dist-build plan | head`): what is left to print
// goes nowhere, quietly, and the command finishes as it would have (its clean-up and exit code
// included), instead of dying of an unhandled EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

process.exitCode = await main(process.argv.slice(2));
