// Preprocessing limits from the parsed configuration: one mapping for the server, the CLI tools
// and the bench, so PREPROCESS_FAST_PATH, MAX_INPUT_PIXELS and the decode memory bounds mean
// the same everywhere. Each call makes a new decode budget: call it once per app or run.
import type { Config } from '../config.js'
import { DecodeBudget } from './decode-budget.js'
import type { PreprocessLimits } from './preprocess.js'

export function preprocessLimits (config: Config): PreprocessLimits {
  return {
    maxInputPixels: config.MAX_INPUT_PIXELS,
    fastPath: config.PREPROCESS_FAST_PATH,
    maxDecodeBytes: config.MAX_DECODE_BYTES,
    decodeBudget: new DecodeBudget(config.DECODE_MEMORY_BYTES, config.DECODE_CONCURRENCY),
    decodeWaitMs: config.REQUEST_TIMEOUT_MS
  }
}
