/** Where the generated validator module lives (see config-validator.mjs). */
export const VALIDATOR_FILE: string;
/** The ajv options the validator is compiled with. */
export const AJV_OPTIONS: Record<string, unknown>;
/** The source text of the validator module for `schema`. */
export function validatorSource(schema: object): string;
