// Inference worker: owns one ONNX Runtime session per model. session.run() blocks the thread
// that calls it for the whole run (measured with onnxruntime-node 1.30: a 650 ms run let one
// 5 ms timer fire), so it runs here and never on the event loop that serves HTTP.
import { parentPort, workerData } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import { graphMismatches } from '../registry/graph-check.js'
import type { FromWorker, Provider, ToWorker, WorkerInit, WorkerModelSpec } from './protocol.js'

const init = workerData as WorkerInit
// ORT's native logger would print its own red error when CUDA cannot load; that failure
// reaches us as an exception and is reported once, in our own log, so keep ORT quiet.
ort.env.logLevel = 'fatal'
const sessions = new Map<string, { session: ort.InferenceSession, spec: WorkerModelSpec }>()
const port = parentPort
if (port === null) throw new Error('worker.ts must run as a worker thread')

function post (msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer)
}

async function createSession (spec: WorkerModelSpec, provider: Provider): Promise<ort.InferenceSession> {
  return await ort.InferenceSession.create(spec.onnxPath, {
    executionProviders: [provider],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // ORT's own logger writes to stderr; errors still reach us as exceptions.
    logSeverityLevel: 3
  })
}

async function run (spec: WorkerModelSpec, session: ort.InferenceSession, batch: number, data: Float32Array): Promise<Float32Array> {
  const input = new ort.Tensor('float32', data, [batch, ...spec.sampleShape])
  const outputs = await session.run({ [spec.inputName]: input })
  const out = outputs[spec.outputName]
  if (out === undefined) throw new Error(`model has no output named "${spec.outputName}"`)
  input.dispose()
  return out.data as Float32Array
}

function manifestMessage (spec: WorkerModelSpec, problems: string[]): string {
  return problems.map((p) => `${spec.where}.${p} (${spec.onnxPath})`).join('\n  ')
}

async function start (): Promise<void> {
  const providers: Record<string, Provider> = {}
  const warnings: string[] = []
  // In auto mode the first CUDA failure decides for every model: the reason would be the same.
  let cudaFailed = false
  for (const spec of init.models) {
    let provider: Provider = init.provider === 'cpu' || cudaFailed ? 'cpu' : 'cuda'
    let session: ort.InferenceSession
    try {
      session = await createSession(spec, provider)
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0] ?? String(err)
      if (init.provider !== 'auto' || provider === 'cpu') {
        post({ type: 'init-error', message: `model "${spec.name}": ${reason}`, provider, providerFailed: provider === 'cuda' })
        return
      }
      warnings.push(`CUDA is not usable (${reason}); running on CPU`)
      cudaFailed = true
      provider = 'cpu'
      try {
        session = await createSession(spec, provider)
      } catch (err2) {
        post({ type: 'init-error', message: `model "${spec.name}": ${(err2 as Error).message}`, provider: 'cpu', providerFailed: false })
        return
      }
    }
    // The manifest against the graph, before anything runs: a mismatch names the field.
    const problems = graphMismatches({ inputs: session.inputMetadata, outputs: session.outputMetadata }, {
      inputName: spec.inputName,
      outputName: spec.outputName,
      sampleShape: spec.sampleShape,
      labels: spec.labels,
      maxBatchSize: Math.max(...spec.warmupBatchSizes)
    })
    if (problems.length > 0) {
      post({ type: 'init-error', message: manifestMessage(spec, problems), provider, providerFailed: false, manifest: true })
      return
    }
    try {
      for (const n of spec.warmupBatchSizes) {
        const logits = await run(spec, session, n, new Float32Array(n * spec.sampleShape[0] * spec.sampleShape[1] * spec.sampleShape[2]))
        // A dynamic class axis passes the static check; the first real output decides.
        if (logits.length !== n * spec.labels) {
          post({ type: 'init-error', message: manifestMessage(spec, [`labels: the manifest lists ${spec.labels} labels; the graph's output "${spec.outputName}" has ${logits.length / n} classes`]), provider, providerFailed: false, manifest: true })
          return
        }
      }
    } catch (err) {
      post({ type: 'init-error', message: `model "${spec.name}": warm-up run failed: ${(err as Error).message}`, provider, providerFailed: false })
      return
    }
    sessions.set(spec.name, { session, spec })
    providers[spec.name] = provider
  }
  post({ type: 'ready', providers, warnings })
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'close') {
    void (async () => {
      for (const { session } of sessions.values()) await session.release()
      sessions.clear()
      post({ type: 'closed' })
    })()
    return
  }
  const entry = sessions.get(msg.model)
  if (entry === undefined) {
    post({ type: 'run-error', id: msg.id, message: `model "${msg.model}" is not loaded in this worker` })
    return
  }
  const started = performance.now()
  run(entry.spec, entry.session, msg.batch, new Float32Array(msg.data)).then((logits) => {
    // A copy we own and can transfer: ORT's output may be a view on memory it manages.
    const own = logits.slice()
    post({
      type: 'result',
      id: msg.id,
      logits: own.buffer as ArrayBuffer,
      classes: own.length / msg.batch,
      inferenceMs: performance.now() - started
    }, [own.buffer as ArrayBuffer])
  }, (err: Error) => {
    post({ type: 'run-error', id: msg.id, message: err.message })
  })
})

void start()
