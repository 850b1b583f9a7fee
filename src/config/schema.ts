/**
 * JSON Schema of dist-build.yml. This object is the single source: the loader validates with it
 * and `npm run build` writes it to schema/dist-build.schema.json for editors
 * (`# yaml-language-server: $schema=...`). Semantic rules a schema cannot say (names, needs,
 * cycles, overlapping outputs, exactly one of run/docker) live in validate.ts.
 */

import { SIZE_PATTERN } from './size.js';

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const PLATFORM_PATTERN = '^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$';
const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/** Cache store backends (`cache.stores[].type`); src/store/open.ts maps each to its factory. */
export const STORE_TYPES = ['local', 'gha', 'registry'] as const;

/** What each pattern means, for error messages. */
export const PATTERN_TEXT: Record<string, string> = {
  [SIZE_PATTERN]: 'a size: bytes as a number, or a string such as "500MB", "10GiB"',
  [DURATION_PATTERN]: 'seconds as a number, or a string such as "90s", "10m", "1.5h"',
  [PLATFORM_PATTERN]: 'a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7',
  [ENV_NAME_PATTERN]:
    'an environment variable name (letters, digits, "_"; not starting with a digit)',
};

const size = {
  type: ['integer', 'string'],
  minimum: 1,
  pattern: SIZE_PATTERN,
  description: 'bytes as a number, or a string such as "500MB", "10GiB" (KB = 1000, KiB = 1024)',
} as const;

const duration = {
  type: ['number', 'string'],
  exclusiveMinimum: 0,
  pattern: DURATION_PATTERN,
  description: 'seconds as a number, or a string such as "90s", "10m", "1.5h"',
} as const;

const stringList = (description: string) =>
  ({ type: 'array', items: { type: 'string', minLength: 1 }, description }) as const;

const env = {
  type: 'object',
  description: 'Environment variables; values are strings (numbers and booleans are converted).',
  propertyNames: { pattern: ENV_NAME_PATTERN },
  additionalProperties: { type: ['string', 'number', 'boolean'] },
} as const;

const platform = {
  type: 'string',
  pattern: PLATFORM_PATTERN,
  description: 'a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7',
} as const;

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://github.com/dist-build/dist-build/schema/dist-build.schema.json',
  title: 'dist-build.yml',
  description: 'Build invocations that dist-build places on workers with consistent hashing.',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'invocations'],
  properties: {
    version: { const: 1, description: 'Format version; always 1.' },
    workers: {
      type: 'object',
      additionalProperties: false,
      description:
        'Matrix size rule: clamp(ceil(invocations / max-per-worker), min, max) workers when none are given.',
      properties: {
        min: { type: 'integer', minimum: 1, default: 1 },
        max: { type: 'integer', minimum: 1, maximum: 256, default: 16 },
        'max-per-worker': { type: 'integer', minimum: 1, default: 20 },
      },
    },
    placement: {
      type: 'object',
      additionalProperties: false,
      properties: {
        balance: {
          type: 'number',
          minimum: 1,
          maximum: 10,
          default: 1.1,
          description:
            'Capacity factor: a worker takes at most balance x max(total / workers, longest) seconds of expected work.',
        },
        'default-duration': {
          ...duration,
          default: 60,
          description: 'Expected duration of an invocation with neither history nor estimate.',
        },
      },
    },
    env,
    cache: {
      type: 'object',
      additionalProperties: false,
      description: 'Where workers keep build results.',
      properties: {
        stores: {
          type: 'array',
          minItems: 1,
          default: [{ type: 'local' }],
          description:
            'Cache stores, fastest first: reads fall through in this order and copy hits into the faster stores; writes go to all.',
          items: {
            type: 'object',
            required: ['type'],
            description:
              'One store; options other than type belong to its backend and are checked by it.',
            properties: {
              type: { enum: [...STORE_TYPES], description: 'The backend.' },
              dir: {
                type: 'string',
                minLength: 1,
                description:
                  'local: the store directory, relative to the config directory (default .dist-build/cache).',
              },
              'max-size': {
                ...size,
                description:
                  'local: cap on the bytes of blobs; least recently used entries are evicted beyond it.',
              },
            },
            additionalProperties: true,
          },
        },
        sign: {
          type: 'object',
          additionalProperties: false,
          description:
            'Sign results with HMAC-SHA256; when the secret is set, unsigned or badly signed results are misses.',
          properties: {
            'secret-env': {
              type: 'string',
              pattern: ENV_NAME_PATTERN,
              default: 'DIST_BUILD_CACHE_SECRET',
              description: 'Environment variable holding the secret.',
            },
            required: {
              type: 'boolean',
              default: false,
              description: 'Fail instead of running unsigned when the secret variable is not set.',
            },
          },
        },
      },
    },
    invocations: {
      type: 'object',
      minProperties: 1,
      description: 'Build invocations by name.',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          run: {
            type: 'string',
            minLength: 1,
            description: 'Shell command, run in the config directory.',
          },
          docker: {
            type: 'object',
            additionalProperties: false,
            required: ['context'],
            description: 'A Docker/BuildKit image build.',
            properties: {
              context: { type: 'string', minLength: 1 },
              file: {
                type: 'string',
                minLength: 1,
                description: 'Dockerfile (default: <context>/Dockerfile).',
              },
              target: { type: 'string', minLength: 1 },
              platforms: { type: 'array', items: platform, uniqueItems: true },
              tags: stringList('Image references the built image is tagged with.'),
              'build-args': env,
              push: {
                type: 'boolean',
                default: false,
                description:
                  'Push the image to its tags at the end of the run, from the worker that holds it. Not part of the cache key.',
              },
              network: {
                enum: ['default', 'host', 'none'],
                description:
                  'Network of RUN steps (docker build --network): default, host or none. Not part of the cache key.',
              },
            },
          },
          inputs: stringList(
            'Globs (relative to the config directory) whose contents make up the cache key.',
          ),
          outputs: stringList('Files or directories saved to the cache and exported.'),
          needs: { ...stringList('Invocations whose outputs this one needs.'), uniqueItems: true },
          export: { type: 'boolean', default: false, description: 'A final artifact of the run.' },
          env,
          platform: {
            ...platform,
            description: 'Only workers of this platform may take the invocation.',
          },
          labels: {
            ...stringList('Only workers with all these labels may take the invocation.'),
            uniqueItems: true,
          },
          timeout: { ...duration, default: 3600 },
          estimate: { ...duration, description: 'Expected duration, used until history exists.' },
        },
      },
    },
  },
} as const;
