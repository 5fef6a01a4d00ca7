// npm run reload: finds the server processes of this checkout (not npm, not other programs)
// and SIGHUPs them, so a reload never has to target `npm start`'s PID, which npm does not
// forward SIGHUP to.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { findServers, reload } from '../../../src/tools/cli/reload.js'
import { REPO } from '../../helpers/data.js'
import { startServer, waitForLog } from '../../helpers/server-process.js'

t.test('findServers reads /proc: node running this checkout\'s entry point, wherever it was started from', async (t) => {
  const proc = mkdtempSync(path.join(os.tmpdir(), 'isomax-proc-'))
  t.teardown(() => rmSync(proc, { recursive: true, force: true }))
  const fake = (pid: number, argv: string[], cwd: string): void => {
    mkdirSync(path.join(proc, String(pid)))
    writeFileSync(path.join(proc, String(pid), 'cmdline'), argv.join('\0') + '\0')
    symlinkSync(cwd, path.join(proc, String(pid), 'cwd'))
  }
  fake(10, ['npm start'], REPO) // npm itself: not the server
  fake(11, ['node', 'dist/src/server.js'], REPO)
  fake(12, ['/usr/bin/node', '--import', 'x', path.join(REPO, 'src', 'server.ts')], '/')
  fake(13, ['node', 'dist/src/server.js'], os.tmpdir()) // another checkout's server
  fake(14, ['python3', 'dist/src/server.js'], REPO)
  mkdirSync(path.join(proc, 'self'))
  t.same(findServers(REPO, proc, 0).map((s) => s.pid).sort(), [11, 12])
})

t.test('npm run reload: SIGHUP reaches the real server, which reloads and logs the duration', async (t) => {
  const server = await startServer({ LOG_LEVEL: 'info' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const signalled = reload([])
  t.ok(signalled.some((s) => s.pid === server.child.pid), `signalled ${server.child.pid}`)
  t.ok(await waitForLog(server, /"msg":"reload: generation \d+ serving after \d+ ms"/, 60_000), 'reloaded')
  t.equal(server.child.exitCode, null, 'still running')
})

t.test('no server running from the checkout: a clear error (exit 1 through runCli)', async (t) => {
  const empty = mkdtempSync(path.join(os.tmpdir(), 'isomax-checkout-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  t.throws(() => reload([], empty), new RegExp(`no isomax-serve server started from ${empty} is running`))
  t.throws(() => reload(['now'], empty), { name: 'UsageError' })
})
