// README's test command sets itself up (scripts/test/setup.sh): on a machine without the Debian
// packages it needs, a user who is not root gets the exact command to run, at once, instead of
// knock-on test failures; .ci/run runs exactly README's command and installs nothing before it.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { REPO } from '../helpers/data.js'

const SETUP = path.join(REPO, 'scripts', 'test', 'setup.sh')

/** A folder of stand-ins put first on PATH: each prints what it is given and exits as told. */
function stubs (t: Test, tools: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-setup-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, body] of Object.entries(tools)) {
    writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`)
    chmodSync(path.join(dir, name), 0o755)
  }
  return dir
}

t.test('not root, packages missing: stops at once with the apt-get command to run', async (t) => {
  const bin = stubs(t, {
    'dpkg-query': 'case "$*" in *python3-onnx*|*chromium*) exit 1;; *) printf "install ok installed";; esac',
    id: 'echo 1000',
    // Nothing past the package check may run: npm ci or pip here would mean it went on.
    npm: 'echo "npm ran" >&2; exit 99',
    'apt-get': 'echo "apt-get ran" >&2; exit 99'
  })
  const run = spawnSync('bash', [SETUP], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } })
  t.equal(run.status, 1)
  t.match(run.stderr, /missing Debian packages: python3-onnx chromium/)
  t.match(run.stderr, /^ {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends python3-onnx chromium$/m)
  t.notMatch(run.stderr, /npm ran|apt-get ran/)
})

t.test('root, packages missing: installs exactly those with apt-get', async (t) => {
  const bin = stubs(t, {
    'dpkg-query': 'case "$*" in *nginx-light*) exit 1;; *) printf "install ok installed";; esac',
    id: 'echo 0',
    'apt-get': 'echo "apt-get $*" >&2; case "$*" in *install*) exit 42;; esac'
  })
  const run = spawnSync('bash', [SETUP], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } })
  t.match(run.stderr, /installing Debian packages: nginx-light/)
  t.match(run.stderr, /apt-get install -y -qq --no-install-recommends nginx-light/)
  t.equal(run.status, 1, 'a failed apt-get stops it')
})

t.test('.ci/run calls README\'s test command and installs nothing before it', async (t) => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8')
  const block = /## Two commands\s+```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
  const testCommand = block.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '')[1]
  t.equal(testCommand, 'npm test', 'README\'s second command')
  const ci = readFileSync(path.join(REPO, '.ci', 'run'), 'utf8').split('\n').filter((l) => !l.trim().startsWith('#'))
  const first = ci.findIndex((l) => /^npm test\b/.test(l.trim()))
  t.ok(first > 0, '.ci/run runs npm test')
  t.notMatch(ci.slice(0, first).join('\n'), /\bapt-get\b|\bnpm (ci|install)\b|\bpip3?\b|\bvenv\b/, 'nothing installed before it')
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.test, 'bash scripts/test/run.sh')
  t.match(readFileSync(path.join(REPO, 'scripts', 'test', 'run.sh'), 'utf8'), /bash scripts\/test\/setup\.sh/, 'which sets itself up first')
})
