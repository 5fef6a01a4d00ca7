// Process entry point: config, logger, manifest, app, listen, and graceful shutdown.
// Everything that can be wrong with the environment or the manifest is reported here, in one
// message, before the port opens.
// First: a SIGHUP while the rest loads must not kill the process.
import { takeEarlySighup } from './early-sighup.js'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { Engine } from './inference/engine.js'
import { engineOptions } from './inference/engine-options.js'
import { readRepositoryFile } from './repository/servable.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`isomax-serve: ${err.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }
  // Asynchronous stdout with a bounded buffer: when the event loop is saturated (a storm of
  // 503s) lines beyond 8 MiB are dropped instead of piling up in memory (docs/performance.md).
  // Lines are written 4 KiB at a time, and at least every 100 ms: one write(2) per request line
  // was 7 % of the main thread's time at c=32 (issue 22's profile); no line is dropped for it,
  // and shutdown and fatal errors still flush synchronously.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100, maxLength: 8 * 1024 * 1024 })
  const logger = pino({ level: config.LOG_LEVEL, base: { service: 'isomax-serve', pid: process.pid } }, destination)

  let app
  try {
    const { servable: manifest, staged } = await readRepositoryFile(config.MODELS_MANIFEST, config.DEFAULT_MODEL)
    logger.info({ manifest: manifest.file, models: [...manifest.models.keys()], default: manifest.defaultModel }, 'manifest loaded')
    if (staged.length > 0) logger.info({ staged }, 'not serving the entries not calibrated yet (npm run calibrate)')
    const engine = await Engine.start(manifest, engineOptions(config), logger)
    app = await buildApp({ config, engine, logger })
  } catch (err) {
    logger.fatal({ code: (err as { code?: string }).code }, (err as Error).message)
    destination.flushSync()
    process.exit(1)
  }

  // SIGTERM/SIGINT: readiness turns 503 at once; the server keeps serving for DRAIN_DELAY_MS so
  // the load balancer sees it; then it stops accepting, finishes in-flight requests, releases
  // the ONNX sessions and exits 0. Past SHUTDOWN_TIMEOUT_MS close-with-grace exits 1.
  // SIGHUP reloads the manifest (validate, load, swap; a failure changes nothing), as nginx
  // and most daemons do, instead of close-with-grace's default of shutting down.
  // The repository coalesces a burst of them into one running reload and one waiting.
  const reload = (): void => {
    logger.debug({ signal: 'SIGHUP' }, 'reloading the manifest')
    app.repository.reload().catch(() => { /* logged and counted by plugins/repository.ts */ })
  }
  process.on('SIGHUP', reload)
  // One that arrived while starting (early-sighup.ts): the file may have changed since it was read.
  if (takeEarlySighup()) reload()
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, skip: ['SIGHUP'], logger: { error: (m: string) => logger.error(m) } }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'closing after an uncaught error')
    app.lifecycle.draining = true
    logger.info({ signal, drainDelayMs: config.DRAIN_DELAY_MS }, 'draining: readiness now 503')
    if (config.DRAIN_DELAY_MS > 0) await sleep(config.DRAIN_DELAY_MS)
    // server.close() closes the keep-alive connections idle at that moment only: one whose
    // request is in flight stays open after its response until the client (a load balancer's
    // connection pool) drops it, which holds the exit until SHUTDOWN_TIMEOUT_MS and exit 1.
    // Close each connection as soon as it goes idle. (Found by npm run test:deploy.)
    const sweep = setInterval(() => { app.server.closeIdleConnections() }, 100)
    try {
      await app.close()
    } finally {
      clearInterval(sweep)
    }
    logger.info('closed: in-flight requests finished and sessions released')
    destination.flushSync() // close-with-grace exits right after this function
  })

  await app.listen({ port: config.PORT, host: config.HOST })
  // The Open Inference Protocol over gRPC, on GRPC_PORT ("off": none).
  try {
    const grpcPort = await app.grpc.listen()
    if (grpcPort !== null) logger.info({ port: grpcPort }, `gRPC listening at ${config.HOST}:${grpcPort}`)
  } catch (err) {
    logger.fatal({ port: config.GRPC_PORT }, `gRPC could not listen on ${config.HOST}:${String(config.GRPC_PORT)}: ${(err as Error).message}`)
    destination.flushSync()
    process.exit(1)
  }
}

await main()
