// npm run models -- add|remove and calibrate's manifest write, run as real processes at the same
// time or killed half-way (issue 19, defect 2): one writer at a time under <manifest>.lock, each
// change applied to the manifest as it is when the lock is held, and an order (new file under a
// new name → manifest → old file removed) that a SIGKILL at any step leaves servable.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { models } from '../../../src/tools/cli/models.js'
import { loadManifest, sha256File } from '../../../src/registry/load-manifest.js'
import { updateCalibration } from '../../../src/tools/cli/update-manifest.js'
import { withManifestLock } from '../../../src/tools/cli/manifest-lock.js'
import { readRepositoryFile } from '../../../src/repository/servable.js'
import { cli, type Run as InProcessRun } from '../../helpers/cli.js'
import { fashionTest, MANIFEST, png, REPO } from '../../helpers/data.js'
import { copyModels } from '../../helpers/manifest-copy.js'

const env = { EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', LOG_LEVEL: 'silent' }
const ENTRY = path.join(REPO, 'src', 'tools', 'cli', 'models.ts')
const shipped = JSON.parse(readFileSync(MANIFEST, 'utf8')) as { models: Array<{ name: string, labels: string[] }> }
const LABELS = shipped.models[0]!.labels.join(',')
const ISOMAXPLUS = path.join(REPO, 'models', 'fashion-mnist-isomaxplus', 'model.onnx')
const SOFTMAX = path.join(REPO, 'models', 'fashion-mnist-softmax', 'model.onnx')

const scratch: string[] = []
t.teardown(() => { for (const dir of scratch) rmSync(dir, { recursive: true, force: true }) })
/** A private copy of models/ (four calibrated models), removed when the tests end. */
const modelsCopy = (): string => {
  const manifest = copyModels()
  scratch.push(path.dirname(manifest))
  return manifest
}

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/**
 * The real entry point in a process of its own. With `pauseAfter`, the tool stops at that step
 * (ISOMAX_TEST_PAUSE_AFTER) and is SIGKILLed as soon as it says so: a crash at a known moment.
 */
async function spawnModels (argv: string[], pauseAfter?: string): Promise<Run> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ENTRY, ...argv], {
      cwd: REPO,
      env: { ...process.env, ...env, ...(pauseAfter !== undefined ? { ISOMAX_TEST_PAUSE_AFTER: pauseAfter } : {}) }
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (pauseAfter !== undefined && stderr.includes(`paused after ${pauseAfter}`)) child.kill('SIGKILL')
    })
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/** `npm run models -- …` in this process (test/helpers/cli.ts). */
const inModels = async (argv: string[]): Promise<InProcessRun> => await cli('models', async () => { await models(argv, env) })

const addArgs = (manifest: string, name: string, onnx = SOFTMAX, ...more: string[]): string[] =>
  ['add', '--name', name, '--onnx', onnx, '--labels', LABELS, '--head', 'logits', '--mean', '0.286', '--std', '0.353', '--manifest', manifest, ...more]

/** What the service would do with the file: every entry verified (sha256), the calibrated ones served. */
async function servable (t: Test, manifest: string, what: string): Promise<void> {
  const all = await loadManifest(manifest, { uncalibrated: true }).catch((err: Error) => err)
  if (all instanceof Error) {
    t.fail(`${what}: every entry's sha256 matches its file: ${all.message}`)
    return
  }
  for (const m of all.models.values()) t.equal(await sha256File(m.onnxPath), m.sha256, `${what}: ${m.name}'s file matches its sha256`)
  await t.resolves(readRepositoryFile(manifest), `${what}: the service starts on it`)
}

/** Files beside the manifest the tools may leave only while they run: lock, journal, temporary copies. */
const transient = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp') || f.includes('.journal'))

t.test('8 concurrent adds of different names: all 8 land, the manifest stays valid, nothing orphaned', async (t) => {
  const manifest = modelsCopy()
  const dir = path.dirname(manifest)
  const names = Array.from({ length: 8 }, (_, i) => `concurrent-${i}`)
  const runs = await Promise.all(names.map(async (name) => await spawnModels(addArgs(manifest, name))))
  runs.forEach((r, i) => t.equal(r.code, 0, `${names[i]!}: exit 0 ${r.stderr}`))
  const after = JSON.parse(readFileSync(manifest, 'utf8')) as { default: string, models: Array<{ name: string, path: string }> }
  t.same(after.models.map((m) => m.name).sort(), [...shipped.models.map((m) => m.name), ...names].sort(), 'every entry present, none twice')
  t.equal(after.default, JSON.parse(readFileSync(MANIFEST, 'utf8')).default, 'the default unchanged')
  await servable(t, manifest, 'after 8 adds')
  for (const name of names) t.same(readdirSync(path.join(dir, name)), ['model.onnx'], `${name}/ holds its file, nothing else`)
  t.same(transient(dir), [], 'no lock, journal or temporary file left')
})

t.test('concurrent adds of one name without --force: exactly one of each pair wins, the other exits 2 and says why', async (t) => {
  const manifest = modelsCopy()
  const dir = path.dirname(manifest)
  // Four pairs at once: the race the lock closes is narrow, and one pair alone may miss it.
  const pairs = ['twin-0', 'twin-1', 'twin-2', 'twin-3']
  const runs = await Promise.all(pairs.map(async (name) => await Promise.all([spawnModels(addArgs(manifest, name, SOFTMAX)), spawnModels(addArgs(manifest, name, ISOMAXPLUS))])))
  const after = JSON.parse(readFileSync(manifest, 'utf8')) as { models: Array<{ name: string, sha256: string }> }
  for (const [i, name] of pairs.entries()) {
    const [a, b] = runs[i]!
    t.same([a.code, b.code].sort(), [0, 2], `${name}: one exits 0, one 2: ${a.stderr}${b.stderr}`)
    const loser = a.code === 2 ? a : b
    t.match(loser.stderr, new RegExp(`^models: error: model "${name}" is already in .*manifest\\.json: pass --force to replace it`))
    t.equal(loser.stdout, '', `${name}: the loser does not say "added"`)
    const entries = after.models.filter((m) => m.name === name)
    t.equal(entries.length, 1, `${name}: one entry`)
    t.equal(entries[0]?.sha256, await sha256File(a.code === 0 ? SOFTMAX : ISOMAXPLUS), `${name}: the entry is the winner's`)
    t.same(readdirSync(path.join(dir, name)), ['model.onnx'], `${name}: the loser left no file`)
  }
  await servable(t, manifest, 'after the races')
  t.same(transient(dir), [])
})

t.test('add --force killed at each step: the manifest is servable, and the next run finishes or undoes the step', async (t) => {
  const name = 'fashion-mnist-isomax'
  for (const step of ['staged', 'locked', 'renamed', 'manifest']) {
    await t.test(`killed after "${step}"`, async (t) => {
      const manifest = modelsCopy()
      const dir = path.dirname(manifest)
      const killed = await spawnModels(addArgs(manifest, name, ISOMAXPLUS, '--head', 'isomaxplus', '--force'), step)
      t.equal(killed.signal, 'SIGKILL', `killed: ${killed.stderr}`)
      await servable(t, manifest, `killed after ${step}`)
      const entry = (JSON.parse(readFileSync(manifest, 'utf8')) as { models: Array<{ name: string, sha256: string }> }).models.find((m) => m.name === name)!
      const replaced = step === 'manifest'
      t.equal(entry.sha256, await sha256File(replaced ? ISOMAXPLUS : path.join(REPO, 'models', name, 'model.onnx')),
        replaced ? 'the new entry: the manifest was written' : 'the old entry, still calibrated, on its old file')

      // The next run takes over the dead process's lock and clears what it left.
      const next = await inModels(addArgs(manifest, 'after-crash'))
      t.equal(next.code, 0, next.stderr)
      if (step !== 'staged') t.match(next.stderr, /took over the lock .*manifest\.json\.lock of pid \d+ \(no longer running/, 'says it took over a stale lock')
      t.match(next.stderr, {
        staged: /^note: deleted .*\/\.fashion-mnist-isomax\.model\.onnx\.\d+-[0-9a-f]+\.tmp, a temporary copy left by pid \d+ \(no longer running\)$/m,
        locked: /^note: deleted .*\/\.fashion-mnist-isomax\.model\.onnx\.\d+-[0-9a-f]+\.tmp, a temporary copy left by pid \d+ \(no longer running\)$/m,
        renamed: /^note: undid an interrupted `models add --force` \(pid \d+, .*\): its manifest was never written; deleted .*\/fashion-mnist-isomax\/model-[0-9a-f]{12}\.onnx$/m,
        manifest: /^note: finished an interrupted `models add --force` \(pid \d+, .*\): its manifest was written; deleted .*\/fashion-mnist-isomax\/model\.onnx$/m
      }[step]!, 'says what it cleared up')
      await servable(t, manifest, `after the next run (${step})`)
      const final = JSON.parse(readFileSync(manifest, 'utf8')) as { models: Array<{ name: string, path: string }> }
      const kept = path.basename(final.models.find((m) => m.name === name)!.path)
      t.same(readdirSync(path.join(dir, name)).sort(), ['README.md', kept].sort(), `${name}/: its card and the file the manifest names, no leftover`)
      t.same(transient(dir), [], 'no lock, journal or temporary copy left')
    })
  }
})

t.test('add --force --calibrate into a served manifest: the entry is written calibrated, in one step; a failed calibration adds nothing', async (t) => {
  const manifest = modelsCopy()
  const dir = path.dirname(manifest)
  const images = path.join(dir, 'calibration-images')
  mkdirSync(images)
  for (const [i, { pixels }] of (await fashionTest(40)).entries()) writeFileSync(path.join(images, `${i}.png`), await png(pixels))
  // The default model replaced: until now the entry was written first and calibrated after, and
  // a kill in between left a manifest whose default is uncalibrated — the service refuses it.
  const name = JSON.parse(readFileSync(manifest, 'utf8')).default as string
  const killed = await spawnModels(addArgs(manifest, name, ISOMAXPLUS, '--head', 'isomaxplus', '--force', '--calibrate', images, '--score', 'mds', '--tpr', '0.9'), 'manifest')
  t.equal(killed.signal, 'SIGKILL', killed.stderr)
  t.match(killed.stdout, new RegExp(`^manifest {9}${manifest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: written with the entry \\(below\\), in one step$`, 'm'))
  await servable(t, manifest, 'killed right after the manifest was written')
  const entry = (JSON.parse(readFileSync(manifest, 'utf8')) as { models: Array<{ name: string, sha256: string, ood?: { score: string, calibration: { n: number } } }> }).models.find((m) => m.name === name)!
  t.equal(entry.sha256, await sha256File(ISOMAXPLUS), 'the new weights')
  t.match(entry.ood, { score: 'mds', calibration: { n: 40 } }, 'calibrated on them, in the same write')

  const junk = path.join(dir, 'junk')
  mkdirSync(junk)
  writeFileSync(path.join(junk, 'a.png'), 'not a png')
  const before = readFileSync(manifest)
  const failed = await inModels(addArgs(manifest, 'never', SOFTMAX, '--calibrate', junk, '--score', 'msp'))
  t.equal(failed.code, 2)
  t.match(failed.stderr, /^models: error: "never" was not added to .*manifest\.json, which is unchanged: calibrating it failed: .*junk: none of the 1 images could be read/m)
  t.same(readFileSync(manifest), before, 'the manifest unchanged')
  t.notOk(existsSync(path.join(dir, 'never')), 'no folder')
  // (The killed run's lock and journal are still there: the next run that takes the lock clears them.)
  t.same(transient(dir).filter((f) => f.endsWith('.tmp')), [], 'no scratch manifest or copy left')
})

t.test('remove killed after the manifest was written: the next run deletes the files it left', async (t) => {
  const manifest = modelsCopy()
  const dir = path.dirname(manifest)
  const killed = await spawnModels(['remove', '--name', 'fashion-mnist-softmax', '--manifest', manifest], 'manifest')
  t.equal(killed.signal, 'SIGKILL', killed.stderr)
  await servable(t, manifest, 'killed remove')
  const next = await inModels(addArgs(manifest, 'after-remove'))
  t.equal(next.code, 0, next.stderr)
  t.match(next.stderr, /^note: finished an interrupted `models remove` \(pid \d+, [-:.0-9TZ]+\): its manifest was written; deleted .*fashion-mnist-softmax\/README\.md, .*fashion-mnist-softmax\/model\.onnx, .*fashion-mnist-softmax\/$/m)
  t.notOk(existsSync(path.join(dir, 'fashion-mnist-softmax')), 'the folder went with its files')
  t.same(transient(dir), [])
})

t.test('a stale lock (its pid dead) is taken over with a message; a live one is waited for, then refused naming the holder', async (t) => {
  const manifest = modelsCopy()
  const dead = await new Promise<number>((resolve) => { const c = spawn('true'); c.on('exit', () => resolve(c.pid!)) })
  writeFileSync(`${manifest}.lock`, JSON.stringify({ pid: dead, hostname: (await import('node:os')).hostname(), started: '2026-01-01T00:00:00.000Z', command: 'models add', token: 'x' }) + '\n')
  const r = await inModels(addArgs(manifest, 'after-stale'))
  t.equal(r.code, 0, r.stderr)
  t.match(r.stderr, new RegExp(`took over the lock .*manifest\\.json\\.lock of pid ${dead} \\(no longer running; models add since 2026-01-01T00:00:00\\.000Z\\)`))
  t.notOk(existsSync(`${manifest}.lock`), 'released')

  // A pid that lives on in another process: this one's own (a container gives the tool the same
  // small pid every run), or a process started after the lock was taken.
  const host = (await import('node:os')).hostname()
  const sleeper = spawn('sleep', ['60'])
  t.teardown(() => sleeper.kill('SIGKILL'))
  await new Promise((resolve) => sleeper.on('spawn', resolve))
  for (const pid of [process.pid, sleeper.pid!]) {
    writeFileSync(`${manifest}.lock`, JSON.stringify({ pid, hostname: host, started: '2026-01-01T00:00:00.000Z', command: 'models remove', token: 'y' }) + '\n')
    const reused = await inModels(addArgs(manifest, `after-reused-${pid}`))
    t.equal(reused.code, 0, reused.stderr)
    t.match(reused.stderr, new RegExp(`took over the lock .* of pid ${pid} \\(no longer running: the pid is another process's now; models remove since 2026-01-01`), `pid ${pid} reused`)
  }

  // A holder that is alive (this test's own process, holding it in another call).
  let release = (): void => {}
  const held = withManifestLock(manifest, 'models add', async () => await new Promise<void>((resolve) => { release = resolve }))
  const started = Date.now()
  await t.rejects(withManifestLock(manifest, 'models remove', async () => {}, { timeoutMs: 400 }),
    { code: 'ISOMAX_MANIFEST_LOCKED', message: new RegExp(`^${manifest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.lock: another run holds the manifest: pid ${process.pid} \\(models add since .*\\); waited 0\\.4 s\\. If no such process is running, delete the lock file`) })
  t.ok(Date.now() - started >= 400, 'waited the bounded time first')
  const waiting = withManifestLock(manifest, 'models remove', async () => 'ran after the holder', { timeoutMs: 10_000 })
  release()
  await held
  t.equal(await waiting, 'ran after the holder', 'a waiter gets the lock once it is released')
})

t.test('calibrate\'s write: concurrent ones all land; a model replaced while it was calibrated is refused', async (t) => {
  const manifest = modelsCopy()
  const raw = JSON.parse(readFileSync(manifest, 'utf8')) as { models: Array<{ name: string, sha256: string, ood: { threshold: number } & Record<string, unknown> }> }
  await Promise.all(raw.models.map(async (m, i) => { await updateCalibration(manifest, m.name, { ...m.ood, threshold: -100 - i } as never) }))
  const after = JSON.parse(readFileSync(manifest, 'utf8')) as typeof raw
  t.same(after.models.map((m) => m.ood.threshold), raw.models.map((_, i) => -100 - i), 'every threshold written, none lost')
  await servable(t, manifest, 'after concurrent calibrations')

  const m = raw.models[0]!
  await t.rejects(updateCalibration(manifest, m.name, m.ood as never, undefined, { sha256: '0'.repeat(64) }),
    { message: new RegExp(`"${m.name}" was replaced while it was calibrated \\(its sha256 is now ${m.sha256}, not 0{64}\\); the manifest is unchanged: calibrate it again`) })
  t.equal(JSON.parse(readFileSync(manifest, 'utf8')).models[0].ood.threshold, -100)
})
