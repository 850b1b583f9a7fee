/** The config file commands read when --config is not given. */
export const DEFAULT_CONFIG = 'dist-build.yml';
