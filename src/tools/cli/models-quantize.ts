// npm run models -- quantize NAME --calibration-images DATA: an INT8 variant of a served model,
// as its own manifest entry.
//
// The calibration images are preprocessed exactly as the service preprocesses uploads (the
// source entry's input spec) and handed to training/quantize/quantize.py, which runs
// onnxruntime's quantize_static in a pinned venv. The result is checked and written the way
// `models add` writes a model: staged beside the manifest, the service's graph check and a
// trial run, its own sha256, calibrated through the serving path on the threshold's data set
// (never the quantisation images: the two are checked to be disjoint, image by image), then,
// under the manifest's lock, moved into its folder and the manifest replaced atomically
// (manifest-change.ts). Before that, both models run on the evaluation data through the
// engine, and the command prints accuracy, OOD AUROC and how many served decisions differ.
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import ort from 'onnxruntime-node'
import { loadConfig } from '../../config.js'
import { graphMismatches } from '../../registry/graph-check.js'
import { loadManifest, sha256File, type LoadedEntry, type LoadedModel } from '../../registry/load-manifest.js'
import { scoreOutputsOf, type ModelEntry } from '../../registry/manifest-schema.js'
import { preprocessLimits } from '../../preprocess/limits.js'
import { preprocess } from '../../preprocess/preprocess.js'
import { BUILTIN_OOD_SETS, BUILTIN_SETS } from '../datasets/builtin.js'
import { resolveDataset } from '../datasets/resolve.js'
import type { Dataset, Sample } from '../datasets/types.js'
import { parse, requireModel, requireOption, synopsis, UsageError } from './args.js'
import { calibrateStaged } from './models-add.js'
import { changeManifest } from './manifest-change.js'
import { MODEL_FILE, type RawEntry, type RawManifest } from './manifest-file.js'
import { openOnnx } from './onnx-graph.js'
import { compareQuality, qualityText, type Outputs, type QualityReport } from './quantize-quality.js'
import { quantizePython, runQuantize, type QuantizeReport } from './quantize-python.js'
import { runDataset, scoresOf, startEngine } from './run-dataset.js'
import { tempName, writeFileAtomic } from './update-manifest.js'

export const QUANTIZE_USAGE = `usage: npm run models -- quantize NAME --calibration-images DATA [options]

Makes an INT8 variant of the served model NAME with onnxruntime's static quantisation (QDQ,
per-channel int8 weights, uint8 activations, MinMax ranges from DATA; the convolutional trunk
quantised, the global pool and everything after it — head, graph scores — kept float32; the
first convolution kept float32 when that measures better) and adds it to the manifest as its
own model: own file and sha256, checked against its graph, calibrated on --calibrate DATA
(disjoint from the quantisation images), with a parity fixture. Prints accuracy, OOD AUROC
and the decisions that differ from NAME's on --eval and --ood. The first run makes the Python
venv it needs (.venv-tools, training/quantize/requirements.txt).

  NAME                      the served model to quantise (--model NAME also works)
  --calibration-images DATA images for the quantisation ranges: an image folder, an IDX file
                            or a built-in set (fashion-mnist:train-sample: 1,000 training
                            images outside the threshold's split); required
  --count N                 use at most the first N of them (default 1000)
  --as NEW_NAME             the new model's name (default NAME-int8)
  --calibrate DATA          held-out in-distribution images for the threshold (default: the
                            data set NAME was calibrated on, when it is a built-in set)
  --tpr T                   target true-positive rate (default: NAME's)
  --eval DATA               labelled in-distribution images to compare the two models on
                            (default: the --calibrate data)
  --ood LABEL=DATA          an OOD set to compare AUROC on; repeatable
  --builtin-ood             every built-in OOD set: ${BUILTIN_OOD_SETS.join(', ')}
  --first-conv auto|int8|float
                            keep the first convolution float32 (float), quantise it (int8),
                            or measure both and keep the better (auto, the default)
  --reduce-range            7-bit weights: onnxruntime's advice for x86 CPUs without VNNI,
                            whose u8×s8 sums can saturate (not needed with VNNI)
  --version V               default: NAME's version + "-int8"
  --force                   replace a model of the same name (its calibration is redone)
  --manifest FILE           default: $MODELS_MANIFEST, else models/manifest.json
  -h, --help                print this help

docs/models.md ("INT8 variants") explains the choices and the tolerances.`

export interface QuantizeResult {
  manifestFile: string
  entry: ModelEntry
  python: QuantizeReport
  quality: QualityReport
  parityFile: string
}

/** Parity fixture: the INT8 model's outputs on 8 images, and the float model's, with the tolerances the test holds them to. */
const PARITY_IMAGES = 8

async function take (dataset: Dataset, count: number): Promise<Sample[]> {
  const out: Sample[] = []
  for await (const s of dataset.samples()) {
    out.push(s)
    if (out.length >= count) break
  }
  return out
}

const pixelsOf = (s: Sample): Uint8Array => s.image instanceof Uint8Array ? s.image : s.image.pixels

/** The built-in set a calibration record names ("fashion-mnist:val: the 5,000 …" → fashion-mnist:val), if it is one. */
function builtinOf (description: string): string | undefined {
  const name = /^([a-z0-9:-]+?):\s/.exec(description)?.[1]
  return name !== undefined && (BUILTIN_SETS as readonly string[]).includes(name) ? name : undefined
}

export async function quantizeModel (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<QuantizeResult> {
  const positional = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : undefined
  const args = parse(positional !== undefined ? argv.slice(1) : argv, {
    model: { type: 'string' },
    'calibration-images': { type: 'string' },
    count: { type: 'string' },
    as: { type: 'string' },
    calibrate: { type: 'string' },
    tpr: { type: 'string' },
    eval: { type: 'string' },
    ood: { type: 'string', multiple: true },
    'builtin-ood': { type: 'boolean' },
    'first-conv': { type: 'string' },
    'reduce-range': { type: 'boolean' },
    version: { type: 'string' },
    force: { type: 'boolean' },
    manifest: { type: 'string' }
  }, QUANTIZE_USAGE)
  const sourceName = positional ?? args.model
  if (sourceName === undefined) throw new UsageError(`missing NAME, the model to quantise\n${synopsis(QUANTIZE_USAGE)}`)
  const quantSpec = requireOption(args['calibration-images'], 'calibration-images', QUANTIZE_USAGE)
  const count = args.count === undefined ? 1000 : Number(args.count)
  if (!(Number.isInteger(count) && count >= 1 && count <= 100_000)) throw new UsageError(`--count ${args.count}: expected an integer from 1 to 100000`)
  const firstConv = args['first-conv'] ?? 'auto'
  if (!['auto', 'int8', 'float'].includes(firstConv)) throw new UsageError(`--first-conv ${firstConv}: expected auto, int8 or float`)

  const config = loadConfig(env)
  const manifestFile = path.resolve(args.manifest ?? config.MODELS_MANIFEST)
  const manifest = await loadManifest(manifestFile, { uncalibrated: true })
  const source = requireModel(manifest, sourceName)
  if (source.ood === undefined) throw new UsageError(`model "${source.name}" is not calibrated yet: calibrate it first (its score kind and thresholds are what the INT8 variant is calibrated with)`)
  const name = args.as ?? `${source.name}-int8`
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new UsageError(`--as ${name}: use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`)
  if (name === source.name) throw new UsageError(`--as ${name}: that is the model being quantised; choose another name`)
  if (manifest.models.has(name) && args.force !== true) throw new UsageError(`model "${name}" is already in ${manifestFile}: pass --force to replace it, or choose another --as`)
  const calibrateSpec = args.calibrate ?? builtinOf(source.ood.calibration.data)
  if (calibrateSpec === undefined) throw new UsageError(`--calibrate: "${source.name}" was calibrated on "${source.ood.calibration.data}", not a built-in set; name the held-out images for the threshold`)
  const tpr = args.tpr ?? String(source.ood.calibration.targetTpr)
  // The source's "uncertain" reject comes along, rechosen for the INT8 outputs on the same
  // labelled images (its record names them) with the same target and δ; without a built-in set
  // there, the INT8 variant has no confidence threshold until `calibrate --risk-data` gives it one.
  const sourceRisk = source.selective === undefined ? undefined : builtinOf(source.selective.calibration.data)
  const risk = source.selective !== undefined && sourceRisk !== undefined ? { data: sourceRisk, targetRisk: source.selective.targetRisk, delta: source.selective.delta } : undefined
  const oodSpecs = [...(args.ood ?? []), ...(args['builtin-ood'] === true ? BUILTIN_OOD_SETS : [])].map((a) => {
    const eq = a.indexOf('=')
    return eq > 0 ? { label: a.slice(0, eq), spec: a.slice(eq + 1) } : { label: a, spec: a }
  })

  // Every data set resolves before anything runs; the quantisation images must not be threshold images.
  const quantSet = await resolveDataset(quantSpec)
  const thresholdSet = await resolveDataset(calibrateSpec)
  const evalSpec = args.eval ?? calibrateSpec
  const evalSet = await resolveDataset(evalSpec)
  const oodSets = await Promise.all(oodSpecs.map(async (o) => ({ ...o, dataset: await resolveDataset(o.spec) })))
  const quantImages = await take(quantSet, count)
  const hashes = new Set(quantImages.map((s) => createHash('sha256').update(pixelsOf(s)).digest('hex')))
  for (const [spec, set] of [[calibrateSpec, thresholdSet], ...(risk === undefined ? [] : [[risk.data, await resolveDataset(risk.data)] as const])] as const) {
    let shared = 0
    for await (const s of set.samples()) if (hashes.has(createHash('sha256').update(pixelsOf(s)).digest('hex'))) shared++
    if (shared > 0) throw new UsageError(`--calibration-images ${quantSpec} and ${spec === calibrateSpec ? `--calibrate ${spec}` : `the confidence threshold's ${spec}`} share ${shared} image${shared === 1 ? '' : 's'}: the thresholds must be calibrated on images the quantisation ranges never saw`)
  }

  const work = await mkdtemp(path.join(tmpdir(), 'isomax-quantize-'))
  const staged = tempName(path.join(path.dirname(manifestFile), `${name}.model.onnx`))
  try {
    // The quantisation images as the service would feed them.
    const limits = preprocessLimits(config)
    const { channels, height, width } = source.input
    const sample = channels * height * width
    const tensors = new Float32Array(quantImages.length * sample)
    let n = 0
    for (const s of quantImages) {
      try {
        tensors.set((await preprocess(s.image, source.input, limits, s.name)).tensor, n * sample)
        n++
      } catch {} // unreadable: left out, as calibrate leaves it out
    }
    if (n === 0) throw new UsageError(`--calibration-images ${quantSpec}: none of its images could be read`)
    const tensorFile = path.join(work, 'calibration.f32')
    await writeFile(tensorFile, new Uint8Array(tensors.buffer, 0, n * sample * 4))
    process.stdout.write(`quantize         ${source.name} → ${name}: ${n} calibration images from ${quantSet.description}\n`)

    const python = await runQuantize(await quantizePython(env), { model: source.onnxPath, out: staged, tensors: tensorFile, shape: [n, channels, height, width], firstConv, reduceRange: args['reduce-range'] === true }, env)
    const chosen = python.variants.find((v) => v.firstConv === python.chosen)!
    process.stdout.write(`onnxruntime      ${python.tool}, ${python.format}, weights ${python.weights}, activations ${python.activations}, ${python.calibration}\n` +
      `kept float32     ${python.keptFloat.length} quantisable node(s) outside the trunk or chosen so: ${python.keptFloat.join(', ') || 'none'}; the tail (${python.tail.length} nodes from ${python.tail[0] ?? '–'}) is not quantised\n` +
      `first conv       ${python.chosen === 'float' ? 'float32' : 'int8'} (${python.variants.map((v) => `${v.firstConv}: ×${(v.imagesPerCpuSecond[1] / python.floatImagesPerCpuSecond[1]).toFixed(2)} at batch 1, ×${(v.imagesPerCpuSecond[32] / python.floatImagesPerCpuSecond[32]).toFixed(2)} at 32, argmax agreement ${((v.argmaxAgreement ?? 0) * 100).toFixed(1)} %`).join('; ')}; ${python.threads} thread, CPU ${python.cpuFlags.join(' ')})\n`)

    // The entry: the source's, on the new file. Everything the graph must agree with is checked as `models add` checks it.
    const { ood: _ood, probabilities: _p, onnxPath: _o, index: _i, ...rest } = source as LoadedEntry
    let entry: ModelEntry = { ...rest, name, version: args.version ?? `${source.version}-int8`, path: path.posix.join(name, 'model.onnx'), sha256: await sha256File(staged) }
    const graph = await openOnnx(staged, `the quantised ${source.name}`)
    try {
      const problems = graphMismatches(graph, { inputName: entry.input.name, outputName: entry.output.name, sampleShape: [channels, height, width], labels: entry.labels.length, scoreOutputs: scoreOutputsOf(entry.output).map((s) => s.name), maxBatchSize: entry.batching.maxBatchSize })
      if (problems.length > 0) throw new Error(`the quantised model does not fit its entry: ${problems.join('; ')}`)
      const dims = await graph.trialRun(entry.input.name, entry.output.name, [Math.min(2, entry.batching.maxBatchSize), channels, height, width])
      if (dims[1] !== entry.labels.length) throw new Error(`the quantised model's output has shape [${dims.join(', ')}]; expected ${entry.labels.length} classes`)
    } finally {
      await graph.close()
    }

    const perClass = source.ood.classThresholds !== undefined
    const calibrated = await calibrateStaged(manifestFile, staged, entry, { data: calibrateSpec, score: source.ood.score, tpr: Number(tpr), perClass, risk }, env)
    entry = { ...entry, ood: calibrated.ood, ...(calibrated.probabilities !== undefined ? { probabilities: calibrated.probabilities } : {}), ...(calibrated.selective !== undefined ? { selective: calibrated.selective } : {}) }

    const quality = await compare(manifestFile, source as LoadedModel, entry, staged, { label: evalSpec, dataset: evalSet }, oodSets, config)
    process.stdout.write(qualityText(quality) + '\n')
    const parity = await parityFixture(source as LoadedModel, entry, staged, evalSet, config)

    const dir = path.dirname(manifestFile)
    const outcome = await changeManifest(manifestFile, 'models quantize', env, (current) => {
      if (current === undefined) throw new UsageError(`${manifestFile}: the manifest is gone`)
      const old = current.models.find((m) => m.name === name)
      if (old !== undefined && args.force !== true) throw new UsageError(`model "${name}" was added to ${manifestFile} meanwhile: pass --force to replace it`)
      const named = new Set(current.models.map((m) => path.resolve(dir, m.path)))
      const file = ['model.onnx', `model-${entry.sha256.slice(0, 12)}.onnx`].find((c) => !named.has(path.resolve(dir, name, c)))!
      entry = { ...entry, path: path.posix.join(name, file) }
      const models: RawEntry[] = current.models.filter((m) => m.name !== name)
      const at = models.findIndex((m) => m.name === source.name)
      models.splice(old !== undefined ? current.models.indexOf(old) : at + 1, 0, entry as unknown as RawEntry)
      const next: RawManifest = { default: current.default, models }
      const oldFile = old === undefined ? undefined : path.resolve(dir, old.path)
      return {
        command: 'models quantize',
        next,
        after: { name, path: entry.path },
        install: { from: staged, to: path.resolve(dir, entry.path) },
        obsolete: oldFile !== undefined && path.dirname(oldFile) === path.join(dir, name) && MODEL_FILE.test(path.basename(oldFile)) ? [oldFile] : []
      }
    })
    const parityFile = path.join(dir, name, 'parity.json')
    await writeFileAtomic(parityFile, JSON.stringify(parity) + '\n')
    await writeFileAtomic(path.join(dir, name, 'quantization.json'), JSON.stringify({ source: { name: source.name, sha256: source.sha256 }, sha256: entry.sha256, calibrationImages: { spec: quantSpec, description: quantSet.description, n }, threshold: { spec: calibrateSpec, description: thresholdSet.description }, onnxruntime: python, quality }, null, 2) + '\n')
    process.stdout.write([
      `added            ${name} ${entry.version} to ${manifestFile}, after ${source.name}${outcome.deleted.length > 0 ? ` (replaced; deleted ${outcome.deleted.join(', ')})` : ''}`,
      `onnx             ${path.join(dir, entry.path)} (${entry.sha256})`,
      `parity fixture   ${parityFile}: ${PARITY_IMAGES} images; the INT8 outputs within ${parity.tolerance.runtime.maxAbs} of their own, within ${parity.tolerance.float.logitsMaxAbs} (logits) and ${parity.tolerance.float.scoresMaxRel} relative (graph scores) of the float model's`,
      `record           ${path.join(dir, name, 'quantization.json')}`,
      `speed            ${chosen.imagesPerCpuSecond[1].toFixed(0)} / ${chosen.imagesPerCpuSecond[32].toFixed(0)} images per CPU-second at batch 1 / 32 (float ${python.floatImagesPerCpuSecond[1].toFixed(0)} / ${python.floatImagesPerCpuSecond[32].toFixed(0)}), Python onnxruntime, 1 thread`,
      ''
    ].join('\n'))
    return { manifestFile, entry, python, quality, parityFile }
  } catch (err) {
    await rm(staged, { force: true })
    throw err
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Both models on the same images through the engine (a scratch manifest beside the real one, holding the two). */
async function compare (manifestFile: string, source: LoadedModel, entry: ModelEntry, staged: string, id: { label: string, dataset: Dataset }, oodSets: Array<{ label: string, dataset: Dataset }>, config: ReturnType<typeof loadConfig>): Promise<QualityReport> {
  const scratch = tempName(manifestFile)
  const dir = path.dirname(manifestFile)
  const { onnxPath: _o, index: _i, ...sourceEntry } = source
  try {
    await writeFile(scratch, JSON.stringify({ default: source.name, models: [{ ...sourceEntry, path: path.relative(dir, source.onnxPath) }, { ...entry, path: path.basename(staged) }] }))
    const both = await loadManifest(scratch)
    const models = [both.models.get(source.name)!, both.models.get(entry.name)!]
    const engine = await startEngine(both, config)
    try {
      const outputsOf = async (label: string, dataset: Dataset): Promise<{ label: string, float: Outputs, int8: Outputs }> => {
        const run = await runDataset(engine, models, dataset, `compare ${label}`, config)
        const pick = (m: LoadedModel): Outputs => {
          const out = run.outputs.get(m.name)!
          return { logits: out.logits, scores: scoresOf(out, m.ood.score), labels: out.labels }
        }
        return { label, float: pick(models[0]!), int8: pick(models[1]!) }
      }
      const idOut = await outputsOf(id.label, id.dataset)
      const oodOut = []
      for (const o of oodSets) oodOut.push(await outputsOf(o.label, o.dataset))
      return compareQuality(source.labels, idOut, oodOut, source.ood, models[1]!.ood)
    } finally {
      await engine.close(new Error('comparison finished'))
    }
  } finally {
    await rm(scratch, { force: true })
  }
}

export interface QuantizedParity {
  model: string
  source: string
  shape: number[]
  input: number[]
  /** The INT8 model's outputs, by ONNX Runtime (CPU) when it was made: output name → values. */
  outputs: Record<string, number[]>
  /** The float model's outputs on the same input. */
  float: Record<string, number[]>
  tolerance: {
    /** Against `outputs`: the same runtime must give the same numbers. */
    runtime: { maxAbs: number }
    /** Against `float`: INT8 is not bit-exact. The bounds are the largest differences seen on the evaluation data, rounded up. */
    float: { logitsMaxAbs: number, scoresMaxRel: number, sameClass: true }
  }
}

const roundUp = (v: number): number => { const e = 10 ** Math.floor(Math.log10(Math.max(v, 1e-9))); return Math.ceil((v / e) * 1.05) * e }

async function parityFixture (source: LoadedModel, entry: ModelEntry, staged: string, dataset: Dataset, config: ReturnType<typeof loadConfig>): Promise<QuantizedParity> {
  const limits = preprocessLimits(config)
  const { channels, height, width } = entry.input
  // Images both models put in the same class: the fixture checks closeness, the flips are counted above.
  const candidates = await take(dataset, 64)
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], logSeverityLevel: 3 }
  const [fs, qs] = [await ort.InferenceSession.create(source.onnxPath, opts), await ort.InferenceSession.create(staged, opts)]
  try {
    const tensors: Float32Array[] = []
    for (const s of candidates) {
      try { tensors.push((await preprocess(s.image, entry.input, limits, s.name)).tensor) } catch {}
    }
    const all = new Float32Array(tensors.length * channels * height * width)
    tensors.forEach((t, i) => all.set(t, i * t.length))
    const feed = (x: Float32Array, n: number): Record<string, ort.Tensor> => ({ [entry.input.name]: new ort.Tensor('float32', x, [n, channels, height, width]) })
    const [fo, qo] = [await fs.run(feed(all, tensors.length)), await qs.run(feed(all, tensors.length))]
    const classes = entry.labels.length
    const cls = (o: ort.InferenceSession.ReturnType, i: number): number => { const row = (o[entry.output.name]!.data as Float32Array).subarray(i * classes, (i + 1) * classes); return row.indexOf(Math.max(...row)) }
    const keep = tensors.map((_, i) => i).filter((i) => cls(fo, i) === cls(qo, i)).slice(0, PARITY_IMAGES)
    const input = new Float32Array(keep.length * tensors[0]!.length)
    keep.forEach((i, k) => input.set(tensors[i]!, k * tensors[0]!.length))
    const [f, q] = [await fs.run(feed(input, keep.length)), await qs.run(feed(input, keep.length))]
    const names = [entry.output.name, ...scoreOutputsOf(entry.output).map((s) => s.name)]
    const values = (o: ort.InferenceSession.ReturnType): Record<string, number[]> => Object.fromEntries(names.map((nm) => [nm, [...(o[nm]!.data as Float32Array)]]))
    const outputs = values(q)
    const float = values(f)
    let logitsMaxAbs = 0
    let scoresMaxRel = 0
    for (const nm of names) {
      float[nm]!.forEach((v, i) => {
        const d = Math.abs(v - outputs[nm]![i]!)
        if (nm === entry.output.name) logitsMaxAbs = Math.max(logitsMaxAbs, d)
        else scoresMaxRel = Math.max(scoresMaxRel, d / Math.max(1, Math.abs(v)))
      })
    }
    return {
      model: entry.name,
      source: source.name,
      shape: [keep.length, channels, height, width],
      input: [...input],
      outputs,
      float,
      // Bounds with room above what these 8 images show (×4, rounded up), so a runtime whose int8 kernels round differently still passes; a broken model does not.
      tolerance: { runtime: { maxAbs: 1e-4 }, float: { logitsMaxAbs: roundUp(4 * logitsMaxAbs), scoresMaxRel: roundUp(4 * Math.max(scoresMaxRel, 1e-4)), sameClass: true } }
    }
  } finally {
    await fs.release()
    await qs.release()
  }
}
