// Issue 20, defect 3: a bring-your-own model whose output is NaN for an all-black image (it
// normalises by a norm that is zero there; test/tools/cli/nan-onnx.py). calibrate refuses it
// in one line — how many scores are not finite, and the first — and leaves the manifest as it
// was, instead of a NaN threshold or a manifest error a thousand lines long. Calibrated on
// images it can score and served, it answers an all-black image with a 422, not a 500.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { calibrate } from '../../../src/tools/cli/calibrate.js'
import { models } from '../../../src/tools/cli/models.js'
import { cli } from '../../helpers/cli.js'
import { build } from '../../helpers/build.js'
import { fashionTest, png, REPO } from '../../helpers/data.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent' }

t.test('calibrate refuses a model whose scores are NaN for some images, in one line', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-nan-model-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const onnx = path.join(dir, 'nan.onnx')
  const made = spawnSync('/usr/bin/python3', [path.join(REPO, 'test', 'tools', 'cli', 'nan-onnx.py'), onnx], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const manifest = path.join(dir, 'served', 'manifest.json')
  const labels = Array.from({ length: 10 }, (_, i) => `c${i}`).join(',')
  const added = await cli('models', async () => { await models(['add', '--name', 'nan', '--onnx', onnx, '--head', 'logits', '--labels', labels, '--mean', '0', '--std', '1', '--manifest', manifest], env) })
  t.equal(added.code, 0, added.stderr)

  // 30 Fashion-MNIST images and 10 all-black ones.
  const images = path.join(dir, 'images')
  mkdirSync(images)
  for (const [i, img] of (await fashionTest(30)).entries()) writeFileSync(path.join(images, `f${String(i).padStart(2, '0')}.png`), await png(img.pixels))
  for (let i = 0; i < 10; i++) writeFileSync(path.join(images, `z-black-${i}.png`), await png(new Uint8Array(28 * 28)))
  const before = readFileSync(manifest, 'utf8')
  const res = await cli('calibrate', async () => await calibrate(['--model', 'nan', '--data', images, '--score', 'maxlogit', '--manifest', manifest], env))
  t.not(res.code, 0, 'refused')
  // Besides the progress lines, one line: the refusal.
  const lines = res.stderr.split(/[\r\n]+/).filter((l) => l.trim() !== '' && !/^calibrate nan \d+\/40/.test(l))
  t.equal(lines.length, 1, `one line: ${lines.join(' | ').slice(0, 300)}`)
  t.match(lines[0], /^calibrate: error: 10 of 40 scores are not finite \((NaN|-Infinity) ×10; the first is number \d+\): the model's output is NaN or infinite/)
  t.ok(lines[0]!.length < 400, `and a short one (${lines[0]!.length} characters)`)
  t.equal(readFileSync(manifest, 'utf8'), before, 'the manifest is unchanged')

  // Calibrated on the images it can score, then served: the all-black image is a 422.
  for (let i = 0; i < 10; i++) rmSync(path.join(images, `z-black-${i}.png`))
  const ok = await cli('calibrate', async () => await calibrate(['--model', 'nan', '--data', images, '--score', 'maxlogit', '--manifest', manifest], env))
  t.equal(ok.code, 0, ok.stderr)
  const app = await build(t, { MODELS_MANIFEST: manifest })
  const black = await png(new Uint8Array(28 * 28))
  const res1 = await app.inject({ method: 'POST', url: '/classify', payload: black, headers: { 'content-type': 'image/png' } })
  t.equal(res1.statusCode, 422)
  t.match(res1.json().error, { code: 'ISOMAX_NON_FINITE_OUTPUT', message: /the model's output for image is not finite \(logit 0 is NaN\)/ })
  const v2 = await app.inject({ method: 'POST', url: '/v2/models/nan/infer', payload: JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [black.toString('base64')] }] }), headers: { 'content-type': 'application/json' } })
  t.equal(v2.statusCode, 422)
  t.match(v2.json(), { error: /output for image 1 is not finite/ })
  const fine = await app.inject({ method: 'POST', url: '/classify', payload: await png((await fashionTest(1))[0]!.pixels), headers: { 'content-type': 'image/png' } })
  t.equal(fine.statusCode, 200, 'an image it can score is served')
  t.notMatch((await app.inject('/metrics')).body, /NaN/)
})
