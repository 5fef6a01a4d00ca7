// The engine's settings from the parsed configuration: one mapping for the server, the CLI
// tools and the bench, so a new variable cannot reach one and miss the others.
import type { Config } from '../config.js'
import type { EngineOptions } from './engine.js'

export function engineOptions (config: Config): EngineOptions {
  return {
    provider: config.EXECUTION_PROVIDER,
    workers: config.INFERENCE_WORKERS,
    intraOpThreads: config.INTRA_OP_THREADS,
    maxQueueSize: config.MAX_QUEUE_SIZE,
    maxBatchSize: config.MAX_BATCH_SIZE,
    maxQueueDelayMs: config.MAX_QUEUE_DELAY_MS
  }
}
