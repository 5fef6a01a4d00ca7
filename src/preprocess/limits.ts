// Preprocessing limits from the parsed configuration: one mapping for the server, the CLI tools
// and the bench, so PREPROCESS_FAST_PATH and MAX_INPUT_PIXELS mean the same everywhere.
import type { Config } from '../config.js'
import type { PreprocessLimits } from './preprocess.js'

export function preprocessLimits (config: Config): PreprocessLimits {
  return { maxInputPixels: config.MAX_INPUT_PIXELS, fastPath: config.PREPROCESS_FAST_PATH }
}
