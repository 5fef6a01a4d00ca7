// npm run models -- add: one ONNX classifier into the manifest, with everything the graph
// can tell (input and output names, channels, height, width) read from it, the sha256
// computed, and the file copied next to the manifest. The entry is written without an `ood`
// block: only calibrate computes that (with --calibrate, in the same command: into a manifest
// that exists, before the entry is written, and written with it).
//
// Nothing is written until everything has been checked: the ONNX file is copied to a
// temporary name beside the manifest, ONNX Runtime opens the copy, the service's own graph
// check and a trial run compare it with the entry, and the whole new manifest is validated.
// Only then, under the manifest's lock and against the manifest as it is at that moment, is
// the copy moved into the model's folder under a name no entry uses (model.onnx, or
// model-<sha256 prefix>.onnx beside the file it replaces), the manifest replaced atomically,
// and the replaced file deleted (manifest-change.ts): concurrent runs lose nothing, and a
// killed one leaves a manifest the service starts on.
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, rm, rmdir, stat, writeFile } from 'node:fs/promises'
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
import { changeManifest, type ManifestChange } from './manifest-change.js'
import { MODEL_FILE, readManifestFile, type RawEntry, type RawManifest } from './manifest-file.js'
import { openOnnx } from './onnx-graph.js'
import { pauseAfter } from './test-pause.js'
import { tempName } from './update-manifest.js'

export const ADD_USAGE = `usage: npm run models -- add --name NAME --onnx FILE --labels FILE|A,B,C --head HEAD --mean M --std S [options]

Adds an ONNX image classifier to the manifest: copies FILE to <manifest folder>/NAME/model.onnx,
reads the input and output names and the input size from the graph, computes the sha256, and
writes the entry without an "ood" block. The service serves only calibrated models: calibrate
next (npm run calibrate), or here with --calibrate. Safe beside other runs of the tools on the
same manifest, and to interrupt (docs/byom.md).

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
  --force                  replace a model of the same name (its calibration is dropped); the
                           new file is NAME/model-<sha256 prefix>.onnx, the old one deleted
  --manifest FILE          default: $MODELS_MANIFEST, else models/manifest.json; created
                           when it does not exist
  --calibrate DATA         then calibrate on held-out in-distribution images: an image folder
                           (flat, or one subfolder per class), an IDX file or a built-in set.
                           Into a manifest that exists, the model is calibrated first and
                           written with its calibration: if that fails, nothing is added
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
  const dir = path.dirname(manifestFile)
  // A refusal before the expensive checks; asked again under the lock, where it counts.
  const existing = await readManifestFile(manifestFile)
  if (existing?.models.some((m) => m.name === name) === true && args.force !== true) throw alreadyThere(name, manifestFile)
  await requireFile(onnx, 'onnx')
  const labels = args.labels !== undefined ? readLabels(args.labels) : metadata!.labels!
  // A wrong data path fails now, not after the model has been added.
  if (calibration !== undefined) await resolveDataset(calibration.data)

  // The folders this call creates for a new manifest: removed again (if empty) on failure.
  const createdDir = await mkdir(dir, { recursive: true })
  // The copy is checked beside the manifest, under a name that says whose it is, and moved into
  // the model's folder only under the lock: a concurrent `models remove` of that folder, or a
  // run that finds it after this one was killed, can tell it is not a model's file.
  const staged = tempName(path.join(dir, `${name}.model.onnx`))
  let entry: ModelEntry
  let fromGraph: string[]
  let outcome: { change: ManifestChange, deleted: string[] }
  let before: RawManifest | undefined
  let calibrated: CalibrationResult | undefined
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
    parseManifest(manifestFile, withEntry(existing, entry, args.default === true)) // refused before the lock is even asked for
    if (calibration !== undefined && existing !== undefined) {
      // Into a manifest that is served: calibrate the checked copy first and write the entry
      // with its `ood` block in one step, so a model is never in the file uncalibrated — a
      // replaced model keeps being served until its successor is calibrated, and a default
      // model never stops the service. A failed calibration adds nothing.
      calibrated = await calibrateStaged(manifestFile, staged, entry, calibration, env)
      entry = { ...entry, ood: calibrated.ood, ...(calibrated.probabilities !== undefined ? { probabilities: calibrated.probabilities } : {}) }
    }
    await pauseAfter('staged', env)

    outcome = await changeManifest(manifestFile, args.force === true ? 'models add --force' : 'models add', env, (current) => {
      before = current
      const old = current?.models.find((m) => m.name === name)
      if (old !== undefined && args.force !== true) throw alreadyThere(name, manifestFile)
      // Never the path of a file an entry names now: a kill before the manifest is written
      // must leave every entry on the file its sha256 describes.
      entry = { ...entry, path: unnamedPath(dir, name, entry.sha256, current) }
      return {
        command: args.force === true ? 'models add --force' : 'models add',
        next: withEntry(current, entry, args.default === true),
        after: { name, path: entry.path },
        install: { from: staged, to: path.resolve(dir, entry.path) },
        obsolete: old !== undefined && ownFile(dir, old) ? [path.resolve(dir, old.path)] : []
      }
    })
  } catch (err) {
    await rm(staged, { force: true })
    if (createdDir !== undefined) await removeEmpty(dir, createdDir)
    throw err
  }

  const old = before?.models.find((m) => m.name === name)
  const isDefault = outcome.change.next.default === name
  report(manifestFile, onnx, entry, { normalisation, created: before === undefined, replaced: old !== undefined, dropped: old?.ood !== undefined && entry.ood === undefined, isDefault, fromGraph, explicitManifest: args.manifest !== undefined, next: calibration === undefined, deleted: outcome.deleted })
  const result: AddResult = { manifestFile, entry, created: before === undefined, replaced: old !== undefined, isDefault, ...(calibrated !== undefined ? { calibration: calibrated } : {}) }
  // A new manifest: nothing is served from it yet, so the entry goes in first and stays, uncalibrated, if calibrating fails.
  if (calibration !== undefined && calibrated === undefined) {
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

/**
 * Calibrate the checked copy before anything is written: a scratch manifest beside the real
 * one holds the entry alone, pointing at the copy; calibrate runs on it without writing.
 */
export async function calibrateStaged (manifestFile: string, staged: string, entry: ModelEntry, calibration: { data: string, score: ScoreKind, tpr: number, perClass?: boolean, risk?: { data: string, targetRisk: number, delta: number } | undefined }, env: NodeJS.ProcessEnv): Promise<CalibrationResult> {
  const scratch = tempName(manifestFile)
  try {
    await writeFile(scratch, JSON.stringify({ default: entry.name, models: [{ ...entry, path: path.basename(staged) }] }))
    const result = await calibrate(['--manifest', scratch, '--model', entry.name, '--data', calibration.data, '--score', calibration.score, '--tpr', String(calibration.tpr), ...(calibration.perClass === true ? ['--per-class'] : []),
      ...(calibration.risk !== undefined ? ['--risk-data', calibration.risk.data, '--target-risk', String(calibration.risk.targetRisk), '--delta', String(calibration.risk.delta)] : []), '--dry-run'], env,
    { manifestLine: `manifest         ${manifestFile}: written with the entry (below), in one step` })
    process.stdout.write('\n')
    return result
  } catch (err) {
    (err as Error).message = `"${entry.name}" was not added to ${manifestFile}, which is unchanged: calibrating it failed: ${(err as Error).message}`
    throw err
  } finally {
    await rm(scratch, { force: true })
  }
}

function alreadyThere (name: string, manifestFile: string): UsageError {
  return new UsageError(`model "${name}" is already in ${manifestFile}: pass --force to replace it (its calibration is dropped), or choose another --name`)
}

/** The manifest with `entry` in it: in the place of the entry of that name (which keeps its place), else last. */
function withEntry (current: RawManifest | undefined, entry: ModelEntry, makeDefault: boolean): RawManifest {
  const models: RawEntry[] = [...(current?.models ?? [])]
  const at = models.findIndex((m) => m.name === entry.name)
  // A replaced entry's `ood` block goes with it: it described other weights.
  if (at >= 0) models[at] = entry as unknown as RawEntry
  else models.push(entry as unknown as RawEntry)
  return { default: current === undefined || makeDefault ? entry.name : current.default, models }
}

/** NAME/model.onnx, or, where an entry names that (a replacement), NAME/model-<sha256 prefix>.onnx. */
function unnamedPath (dir: string, name: string, sha256: string, current: RawManifest | undefined): string {
  const named = new Set((current?.models ?? []).map((m) => path.resolve(dir, m.path)))
  const candidates = ['model.onnx', `model-${sha256.slice(0, 12)}.onnx`, `model-${sha256.slice(0, 12)}-${randomBytes(4).toString('hex')}.onnx`]
  return path.posix.join(name, candidates.find((c) => !named.has(path.resolve(dir, name, c)))!)
}

/** Whether an entry's file is one `models add` put in the model's own folder (and so may delete). */
function ownFile (dir: string, entry: RawEntry): boolean {
  const file = path.resolve(dir, entry.path)
  return path.dirname(file) === path.join(dir, entry.name) && MODEL_FILE.test(path.basename(file))
}

/** The folders from `dir` up to `top` that this run created, as long as they are empty. */
async function removeEmpty (dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = path.dirname(d)) {
    try {
      await rmdir(d)
    } catch {
      return
    }
    if (d === top) return
  }
}

function report (manifestFile: string, onnx: string, entry: ModelEntry, how: { normalisation: Normalisation, created: boolean, replaced: boolean, dropped: boolean, isDefault: boolean, fromGraph: string[], explicitManifest: boolean, next: boolean, deleted: string[] }): void {
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
  if (how.deleted.length > 0) lines.push(`deleted          ${how.deleted.join(', ')} (the replaced file)`)
  if (how.next) {
    lines.push(`next             npm run calibrate -- ${how.explicitManifest ? `--manifest ${manifestFile} ` : ''}--model ${entry.name} --score KIND --data PATH`,
      how.isDefault
        ? '                 (until then the service neither starts on this manifest nor reloads it: its default model must be calibrated)'
        : '                 (until then the service serves the other models, not this one)')
  }
  process.stdout.write(lines.join('\n') + '\n')
}
