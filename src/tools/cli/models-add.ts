// npm run models -- add: one ONNX classifier into the manifest, with everything the graph
// can tell (input and output names, channels, height, width) read from it, the sha256
// computed, and the file copied next to the manifest. The entry is written without an `ood`
// block: only calibrate writes that (with --calibrate, in the same command).
//
// Nothing is written until everything has been checked: the ONNX file is copied to a
// temporary name beside its target, ONNX Runtime opens the copy, the service's own graph
// check and a trial run compare it with the entry, and the whole new manifest is validated;
// only then is the copy renamed into place and the manifest replaced atomically.
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { loadConfig } from '../../config.js'
import { graphMismatches } from '../../registry/graph-check.js'
import { parseManifest, sha256File } from '../../registry/load-manifest.js'
import { ModelEntrySchema, SCORE_KINDS, type ModelEntry, type ScoreKind } from '../../registry/manifest-schema.js'
import { resolveDataset } from '../datasets/resolve.js'
import { joinNumberLists, parse, parseScore, parseTpr, requireOption, UsageError } from './args.js'
import { calibrate, type CalibrationResult } from './calibrate.js'
import { checkOutputWidth, perChannel, pickValue, sampleShape } from './graph-spec.js'
import { readLabels } from './labels.js'
import { readMetadata, type ModelMetadata } from './model-metadata.js'
import { readManifestFile, writeManifestFile, type RawEntry, type RawManifest } from './manifest-file.js'
import { openOnnx } from './onnx-graph.js'

export const ADD_USAGE = `usage: npm run models -- add --name NAME --onnx FILE --labels FILE|A,B,C --head HEAD --mean M --std S [options]

Adds an ONNX image classifier to the manifest: copies FILE to <manifest folder>/NAME/model.onnx,
reads the input and output names and the input size from the graph, computes the sha256, and
writes the entry without an "ood" block. The service serves only calibrated models: calibrate
next (npm run calibrate), or here with --calibrate.

  --name NAME              lower-case letters, digits, ".", "_" and "-"
  --onnx FILE              the exported model: input [batch, channels, height, width] float32,
                           output [batch, classes]
  --labels FILE|A,B,C      class names in output order: a file (one per line, a JSON array,
                           or a JSON object with a "labels" array) or a comma-separated list;
                           as many as the output has classes
  --head HEAD              isomaxplus or isomax (the output is negative distances to the class
                           prototypes), or logits (alias softmax: a plain classifier)
  --version V              default 1.0.0
  --mean M[,M,M]           what training subtracted from pixel / 255: one value, or one per
                           channel (commas or spaces between them); required
  --std S[,S,S]            what it then divided by, likewise; required. Pixel / 255 alone:
                           --mean 0 --std 1
  --metadata FILE          a JSON object with "mean", "std" and/or "labels" (a training run's
                           metadata): what the flags leave out is taken from it
  --fit fill|contain|cover how an image of another size is resized (default fill: stretch)
  --colour grey|rgb        default: grey for 1 channel, rgb for 3
  --input NAME             the graph input to feed (default: the graph's only input)
  --output NAME            the graph output to read (default: the graph's only output)
  --channels C, --height H, --width W
                           needed only where the graph's dimension is symbolic
  --max-batch-size N       images per inference batch, 1 to 4096 (default 32)
  --max-queue-delay-ms MS  how long a batch waits to fill, 0 to 10000 (default 0)
  --default                make it the manifest's default model (a new manifest's first
                           model is the default anyway)
  --force                  replace a model of the same name (its calibration is dropped)
  --manifest FILE          default: $MODELS_MANIFEST, else models/manifest.json; created
                           when it does not exist
  --calibrate DATA         then calibrate on held-out in-distribution images: an image folder
                           (flat, or one subfolder per class), an IDX file or a built-in set
  --score KIND             with --calibrate: the decision score, one of
                           ${SCORE_KINDS.join(', ')}
  --tpr T                  with --calibrate: the target true-positive rate (default 0.95)
  -h, --help               print this help

docs/byom.md walks through exporting, adding, calibrating and serving a model.`

const HEADS = {
  isomaxplus: { head: 'isomaxplus', holds: 'negative-distances' },
  isomax: { head: 'isomax', holds: 'negative-distances' },
  logits: { head: 'softmax', holds: 'logits' },
  softmax: { head: 'softmax', holds: 'logits' }
} as const

const FITS = ['fill', 'contain', 'cover'] as const

export interface AddResult {
  manifestFile: string
  entry: ModelEntry
  created: boolean
  replaced: boolean
  isDefault: boolean
  calibration?: CalibrationResult
}

interface Normalisation {
  mean: { text: string, source: string }
  std: { text: string, source: string }
}

/**
 * --mean and --std, or the metadata file's: required, because a wrong guess is silent — the
 * model still answers, only worse (an MNIST model served with 0 and 1 instead of its 0.1307
 * and 0.3081 lost 8 points of accuracy and 35 of TNR@95).
 */
function normalisationOf (args: { mean?: string, std?: string }, metadata: ModelMetadata | undefined): Normalisation {
  const pick = (flag: 'mean' | 'std'): { text: string, source: string } | undefined => {
    if (args[flag] !== undefined) return { text: args[flag], source: `--${flag}` }
    const fromFile = metadata?.[flag]
    return fromFile === undefined ? undefined : { text: fromFile, source: `from ${metadata!.file}` }
  }
  const mean = pick('mean')
  const std = pick('std')
  if (mean === undefined || std === undefined) {
    const missing = [mean === undefined ? '--mean' : undefined, std === undefined ? '--std' : undefined].filter((f) => f !== undefined).join(' and ')
    throw new UsageError(`missing ${missing}: the normalisation training used, pixel / 255 then (x − mean) / std per channel ` +
      `(e.g. --mean 0.1307 --std 0.3081 for MNIST; --mean 0 --std 1 for pixel / 255 alone)${metadata === undefined ? ', or --metadata FILE with "mean" and "std"' : `; ${metadata.file} has no "${missing === '--mean and --std' ? 'mean" or "std' : missing.slice(2)}"`}`)
  }
  return { mean, std }
}

function integer (text: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback
  const v = Number(text)
  if (!(Number.isFinite(v) && v >= min && v <= max && (flag === 'max-queue-delay-ms' || Number.isInteger(v)))) {
    throw new UsageError(`--${flag} ${text}: expected ${flag === 'max-queue-delay-ms' ? 'a number' : 'an integer'} from ${min} to ${max}`)
  }
  return v
}

async function requireFile (file: string, flag: string): Promise<void> {
  try {
    if (!(await stat(file)).isFile()) throw new UsageError(`--${flag} ${file}: not a file`)
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`--${flag} ${file}: no such file`)
  }
}

export async function addModel (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<AddResult> {
  const args = parse(joinNumberLists(argv, ['mean', 'std']), {
    name: { type: 'string' },
    onnx: { type: 'string' },
    labels: { type: 'string' },
    metadata: { type: 'string' },
    head: { type: 'string' },
    version: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    fit: { type: 'string' },
    colour: { type: 'string' },
    input: { type: 'string' },
    output: { type: 'string' },
    channels: { type: 'string' },
    height: { type: 'string' },
    width: { type: 'string' },
    'max-batch-size': { type: 'string' },
    'max-queue-delay-ms': { type: 'string' },
    default: { type: 'boolean' },
    force: { type: 'boolean' },
    manifest: { type: 'string' },
    calibrate: { type: 'string' },
    score: { type: 'string' },
    tpr: { type: 'string' }
  }, ADD_USAGE)
  const name = requireOption(args.name, 'name', ADD_USAGE)
  const onnx = requireOption(args.onnx, 'onnx', ADD_USAGE)
  const metadata = args.metadata === undefined ? undefined : readMetadata(args.metadata)
  if (args.labels === undefined && metadata?.labels === undefined) requireOption(args.labels, 'labels', ADD_USAGE)
  const headArg = requireOption(args.head, 'head', ADD_USAGE)
  const normalisation = normalisationOf(args, metadata)

  // Every flag the graph has no say in is checked before any file is touched.
  if (!ModelEntrySchema.shape.name.safeParse(name).success) throw new UsageError(`--name ${name}: use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`)
  if (!Object.hasOwn(HEADS, headArg)) throw new UsageError(`--head ${headArg}: expected isomaxplus, isomax or logits (alias softmax)`)
  const { head, holds } = HEADS[headArg as keyof typeof HEADS]
  const fit = args.fit ?? 'fill'
  if (!(FITS as readonly string[]).includes(fit)) throw new UsageError(`--fit ${fit}: expected ${FITS.join(', ')}`)
  if (args.colour !== undefined && args.colour !== 'grey' && args.colour !== 'rgb') throw new UsageError(`--colour ${args.colour}: expected grey or rgb`)
  if (args.version !== undefined && args.version.length === 0) throw new UsageError('--version: must not be empty')
  const maxBatchSize = integer(args['max-batch-size'], 'max-batch-size', 1, 4096, 32)
  const maxQueueDelayMs = integer(args['max-queue-delay-ms'], 'max-queue-delay-ms', 0, 10_000, 0)
  let calibration: { data: string, score: ScoreKind, tpr: number } | undefined
  if (args.calibrate !== undefined) {
    if (args.score === undefined) throw new UsageError(`--calibrate needs --score: the decision score for a new model (${SCORE_KINDS.join(', ')})`)
    const score = parseScore(args.score)
    if (score === 'mds' && holds !== 'negative-distances') throw new UsageError(`--score mds needs a distance head (isomaxplus or isomax); --head ${headArg} outputs plain logits`)
    calibration = { data: args.calibrate, score, tpr: parseTpr(args.tpr) }
  } else if (args.score !== undefined || args.tpr !== undefined) {
    throw new UsageError('--score and --tpr go with --calibrate DATA (or run npm run calibrate later)')
  }

  const manifestFile = path.resolve(args.manifest ?? loadConfig(env).MODELS_MANIFEST)
  const existing = await readManifestFile(manifestFile)
  const at = existing?.models.findIndex((m) => m.name === name) ?? -1
  if (at >= 0 && args.force !== true) {
    throw new UsageError(`model "${name}" is already in ${manifestFile}: pass --force to replace it (its calibration is dropped), or choose another --name`)
  }
  await requireFile(onnx, 'onnx')
  const labels = args.labels !== undefined ? readLabels(args.labels) : metadata!.labels!
  // A wrong data path fails now, not after the model has been added.
  if (calibration !== undefined) await resolveDataset(calibration.data)

  const modelDir = path.join(path.dirname(manifestFile), name)
  const target = path.join(modelDir, 'model.onnx')
  // The first folder this call creates (the model's, or the manifest's too): removed on failure.
  const createdDir = await mkdir(modelDir, { recursive: true })
  const staged = path.join(modelDir, `.model.onnx.${randomBytes(6).toString('hex')}.tmp`)
  let entry: ModelEntry
  let next: RawManifest
  let fromGraph: string[]
  try {
    await copyFile(onnx, staged)
    const graph = await openOnnx(staged, onnx)
    try {
      const input = pickValue(graph.inputs, args.input, 'input', onnx)
      const output = pickValue(graph.outputs, args.output, 'output', onnx)
      const shape = sampleShape(input, { channels: args.channels, height: args.height, width: args.width }, onnx)
      fromGraph = shape.fromGraph
      const colour = args.colour ?? (shape.channels === 1 ? 'grey' : 'rgb')
      if ((colour === 'grey') !== (shape.channels === 1)) throw new UsageError(`--colour ${colour}: the input has ${shape.channels} channel${shape.channels === 1 ? '' : 's'}; use ${shape.channels === 1 ? 'grey' : 'rgb'}`)
      checkOutputWidth(output, labels.length, onnx)
      const problems = graphMismatches(graph, {
        inputName: input.name,
        outputName: output.name,
        sampleShape: [shape.channels, shape.height, shape.width],
        labels: labels.length,
        maxBatchSize,
        maxBatchSizeFrom: args['max-batch-size'] !== undefined ? '--max-batch-size' : '--max-batch-size\'s default'
      })
      if (problems.length > 0) throw new UsageError(`${onnx} does not fit the entry: ${problems.join('; ')}`)
      // The graph may leave the class axis symbolic (or declare it wrongly): count the classes
      // of a real output, on a batch of 2 where batching allows, which also tries the batch axis.
      const batch = Math.min(2, maxBatchSize)
      const dims = await graph.trialRun(input.name, output.name, [batch, shape.channels, shape.height, shape.width])
      if (dims.length !== 2 || dims[0] !== batch || dims[1] !== labels.length) {
        throw new UsageError(`--labels: ${labels.length} labels, but a trial run of ${onnx} on ${batch} image${batch === 1 ? '' : 's'} gives output "${output.name}" of shape [${dims.join(', ')}]; expected [${batch}, ${labels.length}]`)
      }
      entry = {
        name,
        version: args.version ?? '1.0.0',
        path: path.posix.join(name, 'model.onnx'),
        sha256: await sha256File(staged),
        head,
        input: {
          name: input.name,
          layout: 'NCHW',
          channels: shape.channels,
          height: shape.height,
          width: shape.width,
          mean: perChannel(normalisation.mean.text, 'mean', shape.channels, normalisation.mean.source),
          std: perChannel(normalisation.std.text, 'std', shape.channels, normalisation.std.source),
          fit: fit as typeof FITS[number],
          colour
        },
        output: { name: output.name, holds },
        labels,
        batching: { maxBatchSize, maxQueueDelayMs }
      }
    } finally {
      await graph.close()
    }
    // A replaced entry keeps its place; its `ood` block goes: it described other weights.
    const models: RawEntry[] = [...(existing?.models ?? [])]
    if (at >= 0) models[at] = entry as unknown as RawEntry
    else models.push(entry as unknown as RawEntry)
    next = { default: existing === undefined || args.default === true ? name : existing.default, models }
    parseManifest(manifestFile, next) // refused here, the staged copy is removed and nothing is written
  } catch (err) {
    await rm(staged, { force: true })
    if (createdDir !== undefined) await rm(createdDir, { recursive: true, force: true })
    throw err
  }
  await rename(staged, target)
  await writeManifestFile(manifestFile, next)

  const isDefault = next.default === name
  const dropped = at >= 0 && existing?.models[at]?.ood !== undefined
  report(manifestFile, onnx, entry, { normalisation, created: existing === undefined, replaced: at >= 0, dropped, isDefault, fromGraph, explicitManifest: args.manifest !== undefined, next: calibration === undefined })
  const result: AddResult = { manifestFile, entry, created: existing === undefined, replaced: at >= 0, isDefault }
  if (calibration !== undefined) {
    process.stdout.write('\n')
    try {
      result.calibration = await calibrate(['--manifest', manifestFile, '--model', name, '--data', calibration.data, '--score', calibration.score, '--tpr', String(calibration.tpr)], env)
    } catch (err) {
      (err as Error).message = `"${name}" was added to ${manifestFile} but not calibrated: ${(err as Error).message}`
      throw err
    }
  }
  return result
}

function report (manifestFile: string, onnx: string, entry: ModelEntry, how: { normalisation: Normalisation, created: boolean, replaced: boolean, dropped: boolean, isDefault: boolean, fromGraph: string[], explicitManifest: boolean, next: boolean }): void {
  const i = entry.input
  const size = how.fromGraph.length === 3 ? 'size from the graph' : how.fromGraph.length === 0 ? 'size from the flags' : `${how.fromGraph.join(', ')} from the graph`
  const shown = entry.labels.length > 6 ? [...entry.labels.slice(0, 5), '…', entry.labels.at(-1)] : entry.labels
  const lines = [
    `added            ${entry.name} ${entry.version} to ${manifestFile}${how.created ? ' (a new manifest)' : how.replaced ? ` (replacing the old entry${how.dropped ? '; its calibration is dropped' : ''})` : ''}${how.isDefault ? '; the default model' : ''}`,
    `onnx             ${path.resolve(onnx)} → ${path.join(path.dirname(manifestFile), entry.path)}`,
    `sha256           ${entry.sha256}`,
    `head             ${entry.head}: output "${entry.output.name}" holds ${entry.output.holds}`,
    `input            "${i.name}" ${i.channels}×${i.height}×${i.width} ${i.colour}, mean [${i.mean.join(', ')}] (${how.normalisation.mean.source}), std [${i.std.join(', ')}] (${how.normalisation.std.source}), fit ${i.fit} (${size})`,
    `labels           ${entry.labels.length}: ${shown.join(', ')}`,
    `batching         up to ${entry.batching.maxBatchSize} images, ${entry.batching.maxQueueDelayMs} ms queue delay`
  ]
  if (how.next) {
    lines.push(`next             npm run calibrate -- ${how.explicitManifest ? `--manifest ${manifestFile} ` : ''}--model ${entry.name} --score KIND --data PATH`,
      '                 (until then the service serves the other models, not this one)')
  }
  process.stdout.write(lines.join('\n') + '\n')
}
