/** A usage problem: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A run that could not go on (no workers joined, an export failed): no stack trace, exit code 1 (2 for bad input). */
export class RunFailure extends Error {
  override name = 'RunFailure';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
