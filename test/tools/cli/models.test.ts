// npm run models -- add|list|remove: the entry `add` writes (read off the graph, sha256, file
// copied next to the manifest, no ood block), list and remove, every refusal as one line
// with exit code 2 and nothing on disk changed, and --help on every tool.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { parseBenchArgs, USAGE as BENCH_USAGE } from '../../../src/tools/bench/args.js'
import { HelpRequest, joinNumberLists } from '../../../src/tools/cli/args.js'
import { calibrate } from '../../../src/tools/cli/calibrate.js'
import { evaluate } from '../../../src/tools/cli/evaluate.js'
import { checkOutputWidth, perChannel, sampleShape } from '../../../src/tools/cli/graph-spec.js'
import { models } from '../../../src/tools/cli/models.js'
import { loadManifest, sha256File } from '../../../src/registry/load-manifest.js'
import { cli, type Run } from '../../helpers/cli.js'
import { MANIFEST, REPO } from '../../helpers/data.js'
import { copyModels } from '../../helpers/manifest-copy.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent' }
const shipped = JSON.parse(readFileSync(MANIFEST, 'utf8')) as { models: Array<{ name: string, labels: string[], ood?: unknown }> }
const FASHION_LABELS = shipped.models[0]!.labels
const ISOMAXPLUS = path.join(REPO, 'models', 'fashion-mnist-isomaxplus', 'model.onnx')
const SOFTMAX = path.join(REPO, 'models', 'fashion-mnist-softmax', 'model.onnx')

const scratch: string[] = []
t.teardown(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }) })
const tmp = (prefix: string): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `isomax-models-${prefix}-`))
  scratch.push(dir)
  return dir
}
/** A private copy of models/ (manifest and ONNX files), removed when the tests end. */
const modelsCopy = (): string => {
  const manifest = copyModels()
  scratch.push(path.dirname(manifest))
  return manifest
}

const run = async (...argv: string[]): Promise<Run> => await cli('models', async () => { await models(argv, env) })

/** Every file under dir, relative, sorted: temporary files and stray folders show up here. */
function tree (dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()
}

function labelsFile (dir: string, name: string, text: string): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  return file
}

t.test('add to a new manifest, add another, list, remove', async (t) => {
  const dir = tmp('flow')
  const manifest = path.join(dir, 'served', 'manifest.json')
  const json = labelsFile(dir, 'labels.json', JSON.stringify(FASHION_LABELS))

  const first = await run('add', '--name', 'garments', '--onnx', ISOMAXPLUS, '--labels', json, '--head', 'isomaxplus',
    '--mean', '0.286', '--std', '0.353', '--manifest', manifest)
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /^added {12}garments 1\.0\.0 to .*served\/manifest\.json \(a new manifest\); the default model$/m)
  t.match(first.stdout, /^next {13}npm run calibrate -- --manifest .*manifest\.json --model garments --score KIND --data PATH$/m)
  const raw = JSON.parse(readFileSync(manifest, 'utf8'))
  t.same(raw, {
    default: 'garments',
    models: [{
      name: 'garments',
      version: '1.0.0',
      path: 'garments/model.onnx',
      sha256: await sha256File(ISOMAXPLUS),
      head: 'isomaxplus',
      input: { name: 'input', layout: 'NCHW', channels: 1, height: 28, width: 28, mean: [0.286], std: [0.353], fit: 'fill', colour: 'grey' },
      output: { name: 'logits', holds: 'negative-distances' },
      labels: FASHION_LABELS,
      batching: { maxBatchSize: 32, maxQueueDelayMs: 0 }
    }]
  }, 'every field read off the graph or the flags; no ood block')
  t.same(readFileSync(path.join(dir, 'served', 'garments', 'model.onnx')), readFileSync(ISOMAXPLUS), 'the ONNX file copied beside the manifest')
  await t.resolves(loadManifest(manifest, { uncalibrated: true }), 'the service\'s loader accepts it (sha256, path relative to the manifest)')
  await t.rejects(loadManifest(manifest), { message: /ood: missing: the model is not calibrated yet/ }, 'and refuses to serve it uncalibrated')

  const lines = labelsFile(dir, 'labels.txt', FASHION_LABELS.join('\r\n') + '\r\n\r\n')
  const second = await run('add', '--name', 'plain', '--onnx', SOFTMAX, '--labels', lines, '--head', 'logits', '--mean', '0', '--std', '1', '--version', '2.0.0',
    '--fit', 'contain', '--max-batch-size', '8', '--max-queue-delay-ms', '2.5', '--default', '--manifest', manifest)
  t.equal(second.code, 0, second.stderr)
  const after = JSON.parse(readFileSync(manifest, 'utf8'))
  t.equal(after.default, 'plain', '--default moves the default')
  t.same(after.models[0], raw.models[0], 'the first entry is left exactly as it was')
  t.match(after.models[1], { name: 'plain', version: '2.0.0', head: 'softmax', output: { holds: 'logits' }, input: { mean: [0], std: [1], fit: 'contain' }, batching: { maxBatchSize: 8, maxQueueDelayMs: 2.5 } })
  t.same(tree(path.join(dir, 'served')), ['garments', 'garments/model.onnx', 'manifest.json', 'plain', 'plain/model.onnx'], 'no temporary files left')

  const list = await run('list', '--manifest', manifest)
  t.equal(list.code, 0)
  const [header, columns, ...rows] = list.stdout.trimEnd().split('\n')
  t.match(header, /served\/manifest\.json: 2 models$/)
  t.match(columns, /^name +version +head +input +labels +calibrated +default$/)
  t.match(rows[0], /^garments +1\.0\.0 +isomaxplus +"input" 1×28×28 grey +10 +no$/)
  t.match(rows[1], /^plain +2\.0\.0 +softmax +"input" 1×28×28 grey +10 +no +yes$/)

  const refused = await run('remove', '--name', 'plain', '--manifest', manifest)
  t.equal(refused.code, 2)
  t.match(refused.stderr, /^models: error: "plain" is the default model of .*: name the new default with --default \(one of: garments\)\n$/)
  const kept = await run('remove', '--name', 'plain', '--default', 'garments', '--keep-file', '--manifest', manifest)
  t.equal(kept.code, 0, kept.stderr)
  t.match(kept.stdout, /^default {10}garments \(was plain\)$/m)
  t.match(kept.stdout, /^deleted {10}nothing \(--keep-file\)$/m)
  t.ok(existsSync(path.join(dir, 'served', 'plain', 'model.onnx')), '--keep-file keeps the file')
  t.same(JSON.parse(readFileSync(manifest, 'utf8')), raw, 'back to the first entry alone')

  const last = await run('remove', '--name', 'garments', '--manifest', manifest)
  t.equal(last.code, 2)
  t.match(last.stderr, /"garments" is the only model in .*, and a manifest needs at least one: add another first/)
  const unknown = await run('remove', '--name', 'nope', '--manifest', manifest)
  t.match(unknown.stderr, /^models: error: model "nope" is not in .*manifest\.json \(it has: garments\)\n$/)

  // Removing without --keep-file deletes the model folder.
  t.equal((await run('add', '--name', 'again', '--onnx', SOFTMAX, '--labels', lines, '--head', 'softmax', '--mean', '0', '--std', '1', '--manifest', manifest)).code, 0)
  const removed = await run('remove', '--name', 'again', '--manifest', manifest)
  t.equal(removed.code, 0, removed.stderr)
  t.match(removed.stdout, /^deleted {10}.*served\/again\/$/m)
  t.notOk(existsSync(path.join(dir, 'served', 'again')))
})

t.test('refusals: one line, exit code 2, nothing written', async (t) => {
  const dir = tmp('refuse')
  const manifest = modelsCopy()
  const before = readFileSync(manifest)
  const folder = tree(path.dirname(manifest))
  const labels = labelsFile(dir, 'labels.txt', FASHION_LABELS.join('\n'))
  const notOnnx = labelsFile(dir, 'model.onnx', 'this is not a protobuf, let alone a model')
  const add = (...more: string[]): string[] => {
    const argv = ['add', '--name', 'new-model', '--onnx', ISOMAXPLUS, '--labels', labels, '--head', 'isomaxplus', '--mean', '0.286', '--std', '0.353', '--manifest', manifest]
    for (let i = 0; i < more.length; i += 2) {
      const at = argv.indexOf(more[i]!)
      if (at >= 0) argv[at + 1] = more[i + 1]!
      else argv.push(...more.slice(i, i + 2).filter((s) => s !== ''))
    }
    return argv
  }
  const cases: Array<[string, string[], RegExp]> = [
    ['missing ONNX file', add('--onnx', '/no/such/model.onnx'), /--onnx \/no\/such\/model\.onnx: no such file/],
    ['a directory as the ONNX file', add('--onnx', dir), /--onnx .*: not a file/],
    ['not an ONNX model', add('--onnx', notOnnx), /.*\/model\.onnx: not an ONNX model ONNX Runtime can load \(Protobuf parsing failed\.?\)/],
    ['label count ≠ outputs', add('--labels', 'cat,dog,bird'), /--labels: 3 labels, but .*output "logits" has 10 classes \(shape \["batch", 10\]\)/],
    ['labels neither a file nor a list', add('--labels', 'labels-missing.txt'), /--labels labels-missing\.txt: no such file; give a file \(one label per line, a JSON array, or a JSON object with "labels"\) or a comma-separated list/],
    ['duplicate labels', add('--labels', 'a,b,a'), /--labels a,b,a: "a" appears twice/],
    ['unknown head', add('--head', 'cosine'), /--head cosine: expected isomaxplus, isomax or logits \(alias softmax\)/],
    ['existing name without --force', add('--name', 'fashion-mnist-isomax'), /model "fashion-mnist-isomax" is already in .*manifest\.json: pass --force to replace it/],
    ['bad name', add('--name', 'My Model'), /--name My Model: use lower-case letters, digits/],
    ['mean count ≠ channels', add('--mean', '0.1,0.2,0.3'), /--mean 0\.1,0\.2,0\.3: 3 values for 1 channel; give 1/],
    ['std ≤ 0', add('--std', '0'), /--std 0: expected positive numbers/],
    ['height ≠ the graph\'s', add('--height', '32'), /--height 32: the graph's input "input" is \["batch", 1, 28, 28\], height 28/],
    ['colour ≠ channels', add('--colour', 'rgb'), /--colour rgb: the input has 1 channel; use grey/],
    ['unknown input name', add('--input', 'pixels'), /--input pixels: .* has no input of that name; its inputs are "input"/],
    ['bad fit', add('--fit', 'stretch'), /--fit stretch: expected fill, contain, cover/],
    ['batch size out of range', add('--max-batch-size', '5000'), /--max-batch-size 5000: expected an integer from 1 to 4096/],
    ['--calibrate without --score', add('--calibrate', 'fashion-mnist:val'), /--calibrate needs --score/],
    ['--score without --calibrate', add('--score', 'mds'), /--score and --tpr go with --calibrate DATA/],
    ['mds for a logits head', add('--head', 'logits', '--calibrate', 'fashion-mnist:val', '--score', 'mds'), /--score mds needs a distance head/],
    ['calibration data missing', add('--calibrate', '/no/such/images', '--score', 'mds'), /\/no\/such\/images: no such file or directory, and not a built-in set/],
    ['missing --head', ['add', '--name', 'x', '--onnx', ISOMAXPLUS, '--labels', labels, '--manifest', manifest], /missing --head\nusage: npm run models -- add /],
    ['missing --mean and --std', ['add', '--name', 'x', '--onnx', ISOMAXPLUS, '--labels', labels, '--head', 'isomaxplus', '--manifest', manifest],
      /missing --mean and --std: the normalisation training used, pixel \/ 255 then \(x − mean\) \/ std per channel \(e\.g\. --mean 0\.1307 --std 0\.3081 for MNIST; --mean 0 --std 1 for pixel \/ 255 alone\), or --metadata FILE with "mean" and "std"\n$/],
    ['missing --std', ['add', '--name', 'x', '--onnx', ISOMAXPLUS, '--labels', labels, '--head', 'isomaxplus', '--mean', '0.2', '--manifest', manifest], /missing --std: the normalisation/],
    ['mean: two values, space-separated, for one channel', ['add', '--name', 'x', '--onnx', ISOMAXPLUS, '--labels', labels, '--head', 'isomaxplus', '--mean', '0.1', '0.2', '--std', '1', '--manifest', manifest], /--mean 0\.1,0\.2: 2 values for 1 channel; give 1/],
    ['mean not a list of numbers', add('--mean', '0.1,,0.2'), /--mean 0\.1,,0\.2: expected numbers separated by commas or spaces/],
    ['labels: a JSON object without "labels"', add('--labels', labelsFile(dir, 'meta.json', '{ "classes": ["a", "b"] }')), /--labels .*meta\.json: a JSON object without a "labels" array \(its keys: classes\)/],
    ['unknown command', ['rename', '--name', 'x'], /unknown command "rename": expected add, list, remove or quantize/]
  ]
  for (const [what, argv, message] of cases) {
    const r = await run(...argv)
    t.equal(r.code, 2, `${what}: exit code 2`)
    t.match(r.stderr, new RegExp(`^models: error: ${message.source}`), `${what}: ${r.stderr.trim()}`)
    t.equal(r.stdout, '', `${what}: nothing on stdout`)
  }
  t.same(readFileSync(manifest), before, 'the manifest is byte-for-byte unchanged')
  t.same(tree(path.dirname(manifest)), folder, 'no model folder or temporary file left behind')

  // A manifest that is already invalid is the user's to fix: add does not build on it.
  const broken = path.join(dir, 'broken.json')
  writeFileSync(broken, '{ "default": "x", "models": [] }')
  const r = await run('add', '--name', 'y', '--onnx', ISOMAXPLUS, '--labels', labels, '--head', 'isomaxplus', '--mean', '0', '--std', '1', '--manifest', broken)
  t.equal(r.code, 2)
  t.match(r.stderr, /broken\.json: invalid manifest/)
})

t.test('--force replaces the entry in place and drops its calibration', async (t) => {
  const manifest = modelsCopy()
  const before = JSON.parse(readFileSync(manifest, 'utf8'))
  const i = before.models.findIndex((m: { name: string }) => m.name === 'fashion-mnist-isomax')
  const r = await run('add', '--name', 'fashion-mnist-isomax', '--onnx', ISOMAXPLUS, '--labels', FASHION_LABELS.join(','),
    '--head', 'isomaxplus', '--mean', '0.286', '--std', '0.353', '--version', '1.1.0', '--force', '--manifest', manifest)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /\(replacing the old entry; its calibration is dropped\)$/m)
  const after = JSON.parse(readFileSync(manifest, 'utf8'))
  t.equal(after.models[i].version, '1.1.0', 'same place in the list')
  t.equal(after.models[i].ood, undefined, 'no ood block: it described the old weights')
  t.equal(after.models[i].sha256, await sha256File(ISOMAXPLUS))
  after.models.splice(i, 1)
  before.models.splice(i, 1)
  t.same(after, before, 'every other entry unchanged')
})

t.test('symbolic dimensions: flags where the graph cannot say, a trial run for the class count', async (t) => {
  const dir = tmp('symbolic')
  const onnx = path.join(dir, 'symbolic.onnx')
  const made = spawnSync('/usr/bin/python3', [path.join(REPO, 'test', 'tools', 'cli', 'symbolic-onnx.py'), onnx], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const manifest = path.join(dir, 'manifest.json')
  const base = ['add', '--name', 'tiles', '--onnx', onnx, '--head', 'logits', '--mean', '0.5', '--std', '0.25', '--manifest', manifest]

  let r = await run(...base, '--labels', 'a,b,c')
  t.match(r.stderr, /has 2 outputs \("scores", "pooled"\): name the one to use with --output/)
  r = await run(...base, '--labels', 'a,b,c', '--output', 'scores')
  t.match(r.stderr, /the height of input "pixels" is symbolic \(\["batch", 1, "height", "width"\]\): give --height/)
  r = await run(...base, '--labels', 'a,b,c', '--output', 'scores', '--height', '3')
  t.match(r.stderr, /the width of input "pixels" is symbolic/)
  // The graph declares the class axis symbolic; only running it shows 3 classes, not 4.
  r = await run(...base, '--labels', 'a,b,c,d', '--output', 'scores', '--height', '3', '--width', '5')
  t.equal(r.code, 2)
  t.match(r.stderr, /--labels: 4 labels, but a trial run of .*symbolic\.onnx on 2 images gives output "scores" of shape \[2, 3\]; expected \[2, 4\]/)
  t.notOk(existsSync(manifest), 'no manifest created by a refused add')
  t.notOk(existsSync(path.join(dir, 'tiles')), 'no model folder left behind')

  r = await run(...base, '--labels', 'a,b,c', '--output', 'scores', '--height', '3', '--width', '5', '--channels', '1')
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(readFileSync(manifest, 'utf8')).models[0], {
    input: { name: 'pixels', channels: 1, height: 3, width: 5, mean: [0.5], std: [0.25] },
    output: { name: 'scores', holds: 'logits' },
    head: 'softmax'
  })
})

t.test('--help and -h: the usage on stdout, exit code 0, for every tool', async (t) => {
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['models --help', async () => { await models(['--help'], env) }, /^usage: npm run models -- add\|list\|remove/],
    ['models add -h', async () => { await models(['add', '-h'], env) }, /^usage: npm run models -- add --name NAME[^]*--manifest FILE[^]*--calibrate DATA/],
    ['models list --help', async () => { await models(['list', '--help'], env) }, /^usage: npm run models -- list/],
    ['models remove --help', async () => { await models(['remove', '--help', '--bogus'], env) }, /^usage: npm run models -- remove[^]*--keep-file/],
    ['calibrate --help', async () => await calibrate(['--help'], env), /^usage: npm run calibrate[^]*--manifest FILE/],
    ['calibrate -h', async () => await calibrate(['--model', 'x', '-h'], env), /^usage: npm run calibrate/],
    ['evaluate --help', async () => await evaluate(['--help'], env), /^usage: npm run evaluate[^]*--ood LABEL=PATH[^]*--manifest FILE/]
  ]
  for (const [what, fn, usage] of cases) {
    const r = await cli(what.split(' ')[0]!, fn)
    t.equal(r.code, 0, `${what}: exit code 0`)
    t.match(r.stdout, usage, `${what}: usage on stdout`)
    t.equal(r.stderr, '', `${what}: nothing on stderr`)
  }
  t.throws(() => parseBenchArgs(['--help']), new HelpRequest(BENCH_USAGE), 'bench: --help is a help request')
  t.throws(() => parseBenchArgs(['-h', '--nope']), HelpRequest, 'bench: even next to an unknown option')
  t.throws(() => parseBenchArgs(['--nope']), { name: 'TypeError' })
  // A value that looks like the flag is not a help request.
  await t.rejects(calibrate(['--data', '-h'], env), { name: 'UsageError', message: /'--data' argument is ambiguous/ })
  await t.rejects(calibrate(['--data=-h'], env), { name: 'UsageError', message: /missing --model/ })
})

t.test('the real entry point: --help exits 0, bad input exits 2', async (t) => {
  const entry = path.join(REPO, 'src', 'tools', 'cli', 'models.ts')
  const spawnTool = async (args: string[]): Promise<Run> => await new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { cwd: REPO, env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
  const [help, bad] = await Promise.all([
    spawnTool(['--help']),
    spawnTool(['add', '--name', 'x', '--onnx', '/no/such.onnx', '--labels', 'a,b', '--head', 'logits', '--mean', '0', '--std', '1', '--manifest', path.join(tmp('entry'), 'm.json')])
  ])
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: npm run models -- add\|list\|remove/)
  t.equal(bad.code, 2)
  t.equal(bad.stderr, 'models: error: --onnx /no/such.onnx: no such file\n')
})

t.test('labels as a JSON array that is not one', async (t) => {
  const dir = tmp('labels')
  const bad = labelsFile(dir, 'labels.json', '[ "a", 2 ]')
  const unparsable = labelsFile(dir, 'broken.json', '[ "a", ')
  const one = labelsFile(dir, 'one.txt', 'only\n')
  const manifest = path.join(dir, 'm.json')
  copyFileSync(SOFTMAX, path.join(dir, 'model.onnx'))
  const add = async (labels: string): Promise<Run> => await run('add', '--name', 'm', '--onnx', path.join(dir, 'model.onnx'), '--labels', labels, '--head', 'logits', '--mean', '0', '--std', '1', '--manifest', manifest)
  t.match((await add(bad)).stderr, /expected a JSON array of strings/)
  t.match((await add(unparsable)).stderr, /starts with "\[" but is not valid JSON/)
  t.match((await add(one)).stderr, /1 label; a classifier needs at least 2/)
  t.match((await add('a,,b')).stderr, /a label is empty/)
})

t.test('graph shapes the service cannot feed, and per-channel values', async (t) => {
  const value = (shape: Array<number | string>): { name: string, isTensor: boolean, shape: Array<number | string> } => ({ name: 'x', isTensor: true, shape })
  const none = { channels: undefined, height: undefined, width: undefined }
  t.throws(() => sampleShape(value(['batch', 784]), none, 'm.onnx'), { message: 'm.onnx: input "x" has shape ["batch", 784]; the service feeds NCHW images, [batch, channels, height, width] (rank 4)' })
  t.throws(() => sampleShape(value(['batch', 4, 32, 32]), none, 'm.onnx'), { message: /has 4 channels; the service feeds 1 \(grey\) or 3 \(rgb\)/ })
  t.throws(() => sampleShape(value(['batch', 3, 'h', 32]), { ...none, height: '0' }, 'm.onnx'), { message: '--height 0: expected an integer from 1 to 4096' })
  t.throws(() => sampleShape(value(['batch', 3, 'h', 32]), { ...none, height: '2.5' }, 'm.onnx'), { message: /--height 2\.5: expected an integer/ })
  t.match(sampleShape(value(['batch', 'c', 'h', 32]), { channels: '3', height: '24', width: undefined }, 'm.onnx'), { channels: 3, height: 24, width: 32, fromGraph: ['width'] })
  t.same(perChannel('0.5', 'mean', 3), [0.5, 0.5, 0.5], 'one value for every channel')
  t.same(perChannel('0.49, 0.48,0.45', 'mean', 3), [0.49, 0.48, 0.45])
  t.same(perChannel('0.49 0.48  0.45', 'mean', 3), [0.49, 0.48, 0.45], 'spaces, as the Python tools take them')
  t.throws(() => perChannel('0.2,0.2', 'std', 3), { message: '--std 0.2,0.2: 2 values for 3 channels; give 1 or 3' })
  t.throws(() => perChannel('0.2,0.2', 'std', 3, 'from m.json'), { message: 'from m.json 0.2,0.2: 2 values for 3 channels; give 1 or 3' })
  t.throws(() => perChannel('a', 'mean', 1), { message: /--mean a: expected numbers separated by commas or spaces/ })
  t.throws(() => checkOutputWidth(value(['batch', 10, 1, 1]), 10, 'm.onnx'), { message: 'm.onnx: output "x" has shape ["batch", 10, 1, 1]; the service reads [batch, classes]' })
  t.doesNotThrow(() => checkOutputWidth(value(['batch', 'classes']), 10, 'm.onnx'), 'a symbolic class axis is left to the trial run')
})

t.test('remove: a file outside a folder of its own, a file two entries share, a bad --default', async (t) => {
  const dir = tmp('remove')
  const manifest = path.join(dir, 'manifest.json')
  const labels = FASHION_LABELS.join(',')
  for (const name of ['a', 'b', 'c']) {
    t.equal((await run('add', '--name', name, '--onnx', SOFTMAX, '--labels', labels, '--head', 'logits', '--mean', '0', '--std', '1', '--manifest', manifest)).code, 0)
  }
  // Hand-edited layouts: "b" points at a file beside the manifest, "c" at "a"'s file.
  copyFileSync(SOFTMAX, path.join(dir, 'shared.onnx'))
  const raw = JSON.parse(readFileSync(manifest, 'utf8'))
  raw.models[1].path = 'shared.onnx'
  raw.models[2].path = 'a/model.onnx'
  writeFileSync(manifest, JSON.stringify(raw))

  t.match((await run('remove', '--name', 'b', '--default', 'b', '--manifest', manifest)).stderr, /--default b: not another model of .* \(choose one of: a, c\)/)
  t.match((await run('remove', '--name', 'b', '--default', 'zzz', '--manifest', manifest)).stderr, /--default zzz: not another model/)
  const b = await run('remove', '--name', 'b', '--manifest', manifest)
  t.match(b.stdout, /^deleted {10}.*\/shared\.onnx$/m, 'only the file: the manifest folder is nobody\'s model folder')
  t.notOk(existsSync(path.join(dir, 'shared.onnx')))
  t.ok(existsSync(path.join(dir, 'b')), 'the folder add made for "b" is not what "b" pointed at')
  const c = await run('remove', '--name', 'c', '--manifest', manifest)
  t.match(c.stdout, /^deleted {10}nothing \(another model uses the file\)$/m)
  t.ok(existsSync(path.join(dir, 'a', 'model.onnx')))
  const a = await run('remove', '--name', 'a', '--default', 'a', '--manifest', manifest)
  t.equal(a.code, 2)
})

t.test('manifests add cannot build on', async (t) => {
  const dir = tmp('manifests')
  const args = ['add', '--name', 'm', '--onnx', SOFTMAX, '--labels', FASHION_LABELS.join(','), '--head', 'logits', '--mean', '0', '--std', '1', '--manifest']
  writeFileSync(path.join(dir, 'broken.json'), '{ "default": ')
  t.match((await run(...args, path.join(dir, 'broken.json'))).stderr, /broken\.json: not valid JSON \(.*\); fix it first/)
  mkdirSync(path.join(dir, 'folder.json'))
  t.match((await run(...args, path.join(dir, 'folder.json'))).stderr, /folder\.json: cannot read the manifest \(EISDIR/)
  t.match((await run('list', '--manifest', path.join(dir, 'none.json'))).stderr, /none\.json: no such manifest \(npm run models -- add creates one\)/)
})

t.test('--calibrate that fails after the add: the entry stays, uncalibrated, and the error says so', async (t) => {
  const dir = tmp('calfail')
  const junk = path.join(dir, 'junk')
  mkdirSync(junk)
  writeFileSync(path.join(junk, 'a.png'), 'not a png')
  const manifest = path.join(dir, 'manifest.json')
  const r = await run('add', '--name', 'm', '--onnx', ISOMAXPLUS, '--labels', FASHION_LABELS.join(','), '--head', 'isomaxplus',
    '--mean', '0.286', '--std', '0.353', '--manifest', manifest, '--calibrate', junk, '--score', 'entropic', '--tpr', '0.9')
  t.equal(r.code, 2)
  t.match(r.stderr, /models: error: "m" was added to .*manifest\.json but not calibrated: .*junk: none of the 1 images could be read/)
  t.equal(JSON.parse(readFileSync(manifest, 'utf8')).models[0].ood, undefined)
})

t.test('--metadata: mean, std and labels from a training run\'s JSON file; flags win; the report says where each came from', async (t) => {
  const dir = tmp('metadata')
  const meta = labelsFile(dir, 'model.json', JSON.stringify({ arch: 'cnn', labels: FASHION_LABELS, mean: [0.286], std: 0.353 }))
  const manifest = path.join(dir, 'served', 'manifest.json')
  const r = await run('add', '--name', 'm', '--onnx', ISOMAXPLUS, '--metadata', meta, '--head', 'isomaxplus', '--manifest', manifest)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^input {12}"input" 1×28×28 grey, mean \\[0\\.286\\] \\(from ${meta}\\), std \\[0\\.353\\] \\(from ${meta}\\), fit fill`, 'm'))
  t.match(JSON.parse(readFileSync(manifest, 'utf8')).models[0], { labels: FASHION_LABELS, input: { mean: [0.286], std: [0.353] } })

  const flags = await run('add', '--name', 'n', '--onnx', ISOMAXPLUS, '--metadata', meta, '--mean', '0.5', '--head', 'isomaxplus', '--manifest', manifest)
  t.equal(flags.code, 0, flags.stderr)
  t.match(flags.stdout, /mean \[0\.5\] \(--mean\), std \[0\.353\] \(from .*model\.json\)/)

  const noStd = labelsFile(dir, 'partial.json', JSON.stringify({ mean: 0.286 }))
  const partial = await run('add', '--name', 'o', '--onnx', ISOMAXPLUS, '--metadata', noStd, '--labels', FASHION_LABELS.join(','), '--head', 'isomaxplus', '--manifest', manifest)
  t.equal(partial.code, 2)
  t.match(partial.stderr, /missing --std: .*; .*partial\.json has no "std"\n$/)
  const cases: Array<[string, RegExp]> = [
    ['{ "mean": "0.5", "std": 1 }', /--metadata .*: "mean" must be a number or an array of numbers, one per channel/],
    ['{ "labels": ["a"], "mean": 0, "std": 1 }', /--metadata .*: 1 label; a classifier needs at least 2/],
    ['{ "name": "x" }', /--metadata .*: none of "labels", "mean" and "std" is there \(its keys: name\)/],
    ['[0.5]', /--metadata .*: expected a JSON object with "labels", "mean" and "std"/],
    ['{ "mean": ', /--metadata .*: not valid JSON/]
  ]
  for (const [text, message] of cases) {
    const bad = labelsFile(dir, 'bad.json', text)
    const res = await run('add', '--name', 'p', '--onnx', ISOMAXPLUS, '--metadata', bad, '--labels', 'a,b', '--head', 'isomaxplus', '--manifest', manifest)
    t.equal(res.code, 2, text)
    t.match(res.stderr, message, text)
  }
  t.match((await run('add', '--name', 'p', '--onnx', ISOMAXPLUS, '--metadata', path.join(dir, 'none.json'), '--head', 'isomaxplus', '--manifest', manifest)).stderr, /--metadata .*none\.json: no such file/)
})

t.test('--labels: a JSON object with a "labels" array (a training run\'s model.json) is read as labels, not as lines', async (t) => {
  const dir = tmp('labels-object')
  const meta = labelsFile(dir, 'model.json', JSON.stringify({ arch: 'cnn', labels: FASHION_LABELS, mean: [0.286] }, null, 2))
  const manifest = path.join(dir, 'manifest.json')
  const r = await run('add', '--name', 'm', '--onnx', ISOMAXPLUS, '--labels', meta, '--head', 'isomaxplus', '--mean', '0.286', '--std', '0.353', '--manifest', manifest)
  t.equal(r.code, 0, r.stderr)
  t.same(JSON.parse(readFileSync(manifest, 'utf8')).models[0].labels, FASHION_LABELS)
})

t.test('--mean and --std as the Python tools write them: space-separated, negative values too', async (t) => {
  t.same(joinNumberLists(['--mean', '0.1', '0.5', '0.9', '--std', '1e-1', '.2', '3', '--name', 'x'], ['mean', 'std']),
    ['--mean=0.1,0.5,0.9', '--std=1e-1,.2,3', '--name', 'x'])
  t.same(joinNumberLists(['--mean', '-0.5', '--std', '0.25,', '0.5'], ['mean', 'std']), ['--mean=-0.5', '--std=0.25,0.5'], 'a negative value is not an option; "0.25, 0.5" split by the shell')
  t.same(joinNumberLists(['--mean', '0.1,0.2', '--labels', '1,2', '--', '--mean', '3'], ['mean', 'std']), ['--mean', '0.1,0.2', '--labels', '1,2', '--', '--mean', '3'], 'comma lists and everything after -- as they were')
  const dir = tmp('python-form')
  const manifest = path.join(dir, 'manifest.json')
  const r = await run('add', '--name', 'm', '--onnx', ISOMAXPLUS, '--labels', FASHION_LABELS.join(','), '--head', 'isomaxplus', '--mean', '-0.5', '--std', '2', '--manifest', manifest)
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(readFileSync(manifest, 'utf8')).models[0].input, { mean: [-0.5], std: [2] })
})

t.test('remove deletes only what the tools wrote in the model folder (ONNX file, card, parity fixture); the user\'s files and the folder stay, and the report says so', async (t) => {
  const dir = tmp('remove-own')
  const manifest = path.join(dir, 'manifest.json')
  for (const name of ['keep', 'mine']) {
    t.equal((await run('add', '--name', name, '--onnx', SOFTMAX, '--labels', FASHION_LABELS.join(','), '--head', 'logits', '--mean', '0', '--std', '1', '--manifest', manifest)).code, 0)
  }
  const folder = path.join(dir, 'mine')
  writeFileSync(path.join(folder, 'README.md'), '# mine 1.0.0\n')
  writeFileSync(path.join(folder, 'parity.json'), '{}\n')
  writeFileSync(path.join(folder, 'notes.txt'), 'my training notes\n')
  mkdirSync(path.join(folder, 'checkpoints'))
  writeFileSync(path.join(folder, 'checkpoints', 'epoch-15.pt'), 'weights')
  const r = await run('remove', '--name', 'mine', '--manifest', manifest)
  t.equal(r.code, 0, r.stderr)
  t.same(tree(folder), ['checkpoints', 'checkpoints/epoch-15.pt', 'notes.txt'], 'only the user\'s files are left')
  t.match(r.stdout, /^deleted {10}.*\/mine\/README\.md, .*\/mine\/model\.onnx, .*\/mine\/parity\.json$/m)
  t.match(r.stdout, /^kept {13}.*\/mine\/checkpoints\/, .*\/mine\/notes\.txt \(not written by models add or training; the folder stays\)$/m)
  t.same(JSON.parse(readFileSync(manifest, 'utf8')).models.map((m: { name: string }) => m.name), ['keep'])
})
