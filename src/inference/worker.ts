// Inference worker: owns ONNX Runtime sessions, one per session key. session.run() blocks the
// thread that calls it for the whole run (measured with onnxruntime-node 1.30: a 650 ms run
// let one 5 ms timer fire), so it runs here and never on the event loop that serves HTTP.
// Loads (at start, and on reload) run one after another; runs go on meanwhile on the
// sessions already loaded.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { parentPort, workerData } from 'node:worker_threads'
import ort from 'onnxruntime-node'
import { graphMismatches } from '../registry/graph-check.js'
import type { FromWorker, LoadFailure, Provider, ToWorker, WorkerInit, WorkerModelSpec } from './protocol.js'

const init = workerData as WorkerInit
// ORT's native logger would print its own red error when CUDA cannot load; that failure
// reaches us as an exception and is reported once, in our own log, so keep ORT quiet.
ort.env.logLevel = 'fatal'
const sessions = new Map<string, { session: ort.InferenceSession, spec: WorkerModelSpec, provider: Provider }>()
const port = parentPort
if (port === null) throw new Error('worker.ts must run as a worker thread')
// In auto mode the first CUDA failure decides for every later session: the reason would be the same.
let cudaFailed = false

function post (msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer)
}

/**
 * The ONNX file's bytes, if they are still the ones the manifest names. The manifest was checked
 * when it was loaded, but a worker may load later (a replacement after a crash, a reload): a file
 * replaced on disk meanwhile must not be served under the old entry and threshold.
 */
async function verifiedModel (spec: WorkerModelSpec): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(spec.onnxPath)
  } catch (err) {
    throw new LoadError({ message: `${spec.where}.path: ${spec.onnxPath}: ${(err as Error).message}`, provider: init.provider, providerFailed: false, manifest: true })
  }
  const actual = createHash('sha256').update(bytes).digest('hex')
  if (actual !== spec.sha256) {
    throw new LoadError({ message: `${spec.where}.sha256: ${spec.onnxPath} has sha256 ${actual} now, the manifest entry being served says ${spec.sha256}: the file changed on disk; reload the manifest to serve it`, provider: init.provider, providerFailed: false, manifest: true })
  }
  return bytes
}

async function createSession (spec: WorkerModelSpec, bytes: Uint8Array, provider: Provider): Promise<ort.InferenceSession> {
  return await ort.InferenceSession.create(bytes, {
    executionProviders: [provider],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // ORT's own logger writes to stderr; errors still reach us as exceptions.
    logSeverityLevel: 3
  })
}

interface Outputs {
  logits: Float32Array
  /** batch × scoreOutputs.length, row-major; undefined when the model has none. */
  scores: Float32Array | undefined
}

async function run (spec: WorkerModelSpec, session: ort.InferenceSession, batch: number, data: Float32Array): Promise<Outputs> {
  const input = new ort.Tensor('float32', data, [batch, ...spec.sampleShape])
  const outputs = await session.run({ [spec.inputName]: input })
  input.dispose()
  const out = outputs[spec.outputName]
  if (out === undefined) throw new Error(`model has no output named "${spec.outputName}"`)
  if (spec.scoreOutputs.length === 0) return { logits: out.data as Float32Array, scores: undefined }
  // Interleave the score outputs per image: [image 0: score a, score b, …][image 1: …].
  const k = spec.scoreOutputs.length
  const scores = new Float32Array(batch * k)
  spec.scoreOutputs.forEach((name, j) => {
    const values = outputs[name]?.data as Float32Array | undefined
    if (values === undefined || values.length !== batch) throw new Error(`output "${name}" has ${values?.length ?? 0} values for a batch of ${batch}`)
    for (let i = 0; i < batch; i++) scores[i * k + j] = values[i] as number
  })
  return { logits: out.data as Float32Array, scores }
}

class LoadError extends Error {
  constructor (readonly failure: LoadFailure) {
    super(failure.message)
  }
}

function manifestMessage (spec: WorkerModelSpec, problems: string[]): string {
  return problems.map((p) => `${spec.where}.${p} (${spec.onnxPath})`).join('\n  ')
}

/** One session, checked against the manifest and warmed up; throws a LoadError. */
async function loadOne (spec: WorkerModelSpec, warnings: string[]): Promise<{ session: ort.InferenceSession, provider: Provider }> {
  let provider: Provider = init.provider === 'cpu' || cudaFailed ? 'cpu' : 'cuda'
  let session: ort.InferenceSession
  const bytes = await verifiedModel(spec)
  try {
    session = await createSession(spec, bytes, provider)
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0] ?? String(err)
    if (init.provider !== 'auto' || provider === 'cpu') {
      throw new LoadError({ message: `model "${spec.name}": ${reason}`, provider, providerFailed: provider === 'cuda', manifest: false })
    }
    warnings.push(`no usable GPU, running on the CPU as EXECUTION_PROVIDER=auto allows (the CUDA provider said: ${reason})`)
    cudaFailed = true
    provider = 'cpu'
    try {
      session = await createSession(spec, bytes, provider)
    } catch (err2) {
      throw new LoadError({ message: `model "${spec.name}": ${(err2 as Error).message}`, provider: 'cpu', providerFailed: false, manifest: false })
    }
  }
  // The manifest against the graph, before anything runs: a mismatch names the field.
  const problems = graphMismatches({ inputs: session.inputMetadata, outputs: session.outputMetadata }, {
    inputName: spec.inputName,
    outputName: spec.outputName,
    sampleShape: spec.sampleShape,
    labels: spec.labels,
    scoreOutputs: spec.scoreOutputs,
    maxBatchSize: Math.max(...spec.warmupBatchSizes),
    ...(spec.maxBatchSizeFrom !== undefined ? { maxBatchSizeFrom: spec.maxBatchSizeFrom } : {})
  })
  try {
    if (problems.length > 0) throw new LoadError({ message: manifestMessage(spec, problems), provider, providerFailed: false, manifest: true })
    for (const n of spec.warmupBatchSizes) {
      let logits: Float32Array
      try {
        ({ logits } = await run(spec, session, n, new Float32Array(n * spec.sampleShape[0] * spec.sampleShape[1] * spec.sampleShape[2])))
      } catch (err) {
        throw new LoadError({ message: `model "${spec.name}": warm-up run failed: ${(err as Error).message}`, provider, providerFailed: false, manifest: false })
      }
      // A dynamic class axis passes the static check; the first real output decides.
      if (logits.length !== n * spec.labels) {
        throw new LoadError({ message: manifestMessage(spec, [`labels: the manifest lists ${spec.labels} labels; the graph's output "${spec.outputName}" has ${logits.length / n} classes`]), provider, providerFailed: false, manifest: true })
      }
    }
  } catch (err) {
    await session.release()
    throw err
  }
  return { session, provider }
}

/** Load every spec not loaded yet; all or nothing: on a failure the new sessions go again. */
async function load (specs: WorkerModelSpec[]): Promise<{ providers: Record<string, Provider>, warnings: string[] }> {
  const providers: Record<string, Provider> = {}
  const warnings: string[] = []
  const added: string[] = []
  try {
    for (const spec of specs) {
      const have = sessions.get(spec.key)
      if (have !== undefined) {
        providers[spec.key] = have.provider
        continue
      }
      const { session, provider } = await loadOne(spec, warnings)
      sessions.set(spec.key, { session, spec, provider })
      added.push(spec.key)
      providers[spec.key] = provider
    }
  } catch (err) {
    await unload(added)
    throw err
  }
  return { providers, warnings }
}

async function unload (keys: string[]): Promise<void> {
  for (const key of keys) {
    const entry = sessions.get(key)
    if (entry === undefined) continue
    sessions.delete(key)
    await entry.session.release()
  }
}

function failure (err: unknown): LoadFailure {
  if (err instanceof LoadError) return err.failure
  return { message: (err as Error).message, provider: init.provider, providerFailed: false, manifest: false }
}

// Loads and unloads run in order, after the initial load.
let chain: Promise<unknown> = load(init.models).then(({ providers, warnings }) => {
  post({ type: 'ready', providers, warnings })
}, (err) => {
  post({ type: 'init-error', ...failure(err) })
})

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'close':
      chain = chain.then(async () => {
        await unload([...sessions.keys()])
        post({ type: 'closed' })
      })
      return
    case 'load':
      chain = chain.then(async () => {
        try {
          const { providers, warnings } = await load(msg.models)
          post({ type: 'loaded', id: msg.id, providers, warnings })
        } catch (err) {
          post({ type: 'load-error', id: msg.id, ...failure(err) })
        }
      })
      return
    case 'unload':
      chain = chain.then(async () => { await unload(msg.keys) })
      return
    case 'run': {
      const entry = sessions.get(msg.key)
      if (entry === undefined) {
        post({ type: 'run-error', id: msg.id, message: `session ${msg.key} is not loaded in this worker` })
        return
      }
      const started = performance.now()
      run(entry.spec, entry.session, msg.batch, new Float32Array(msg.data)).then(({ logits, scores }) => {
        // A copy we own and can transfer: ORT's output may be a view on memory it manages.
        const own = logits.slice()
        const transfer = [own.buffer as ArrayBuffer, ...(scores !== undefined ? [scores.buffer as ArrayBuffer] : [])]
        post({
          type: 'result',
          id: msg.id,
          logits: own.buffer as ArrayBuffer,
          classes: own.length / msg.batch,
          ...(scores !== undefined ? { scores: scores.buffer as ArrayBuffer } : {}),
          inferenceMs: performance.now() - started
        }, transfer)
      }, (err: Error) => {
        post({ type: 'run-error', id: msg.id, message: err.message })
      })
    }
  }
})
