// Debian's nginx with the shipped deploy/nginx.conf (scripts/nginx-conf.ts renders it) in front
// of one service on 127.0.0.1, in a temp folder of its own; stopped and removed when the test
// ends. For the tests that check what the load balancer does (test/deploy/*-nginx, lb-exposure).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { writeNginxConf } from '../../scripts/nginx-conf.js'
import { freePort } from '../../src/tools/bench/server.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface NginxProcess {
  /** http://127.0.0.1:<port> of nginx */
  base: string
  /** Its prefix folder: error.log, access.log, the rendered config. */
  dir: string
}

/** Start nginx over `upstream` (host:port) and wait until it answers /health/live. */
export async function startNginx (t: Teardown, nginxBin: string, upstream: string, name: string): Promise<NginxProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `isomax-nginx-${name}-`))
  const port = await freePort()
  const file = writeNginxConf({ upstreams: [upstream], listen: `127.0.0.1:${port}`, dir })
  const nginx = spawn(nginxBin, ['-p', `${dir}/`, '-c', file, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' })
  t.teardown(async () => {
    await stop(nginx)
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${port}`
  await waitFor(base, nginx, dir)
  return { base, dir }
}

async function waitFor (base: string, nginx: ChildProcess, dir: string): Promise<void> {
  const until = Date.now() + 10_000
  while (Date.now() < until) {
    if (nginx.exitCode !== null) {
      const log = path.join(dir, 'error.log')
      throw new Error(`nginx exited with ${nginx.exitCode}: ${existsSync(log) ? readFileSync(log, 'utf8') : ''}`)
    }
    try {
      const res = await fetch(`${base}/health/live`)
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('nginx did not answer /health/live in 10 s')
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  // nginx's fast shutdown: the master stops its workers.
  child.kill('SIGTERM')
  await exited
}
