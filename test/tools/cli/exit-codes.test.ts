// The tools as a user runs them: one "tool: error: ..." line and exit code 2 on bad input.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { REPO } from '../../helpers/data.js'

function run (tool: string, args: string[]): { status: number | null, stderr: string, stdout: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, path.join(REPO, 'src', 'tools', 'cli', `${tool}.ts`), ...args], {
    cwd: REPO, encoding: 'utf8', env: { ...process.env, EXECUTION_PROVIDER: 'cpu' }, timeout: 120_000
  })
  return { status: r.status, stderr: r.stderr, stdout: r.stdout }
}

t.test('calibrate: unknown model → exit 2, one clear line', async (t) => {
  const r = run('calibrate', ['--model', 'nope', '--data', 'fashion-mnist:val'])
  t.equal(r.status, 2)
  t.match(r.stderr, /^calibrate: error: model "nope" is not in .*manifest\.json \(it has: .*fashion-mnist-isomaxplus/m)
})

t.test('evaluate: unknown option → exit 2 with the usage', async (t) => {
  const r = run('evaluate', ['--modle', 'x'])
  t.equal(r.status, 2)
  t.match(r.stderr, /^evaluate: error: Unknown option '--modle'/m)
  t.match(r.stderr, /usage: npm run evaluate/)
})
