// Start src/server.ts as a real child process (same TypeScript loader as the test runner) and
// find the port it listens on from its JSON log.
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { REPO } from './data.js'

export interface ServerProcess {
  child: ChildProcess
  url: string
  logs: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export function spawnServer (env: Record<string, string>): { child: ChildProcess, logs: () => string, exited: ServerProcess['exited'] } {
  const child = spawn(process.execPath, [...process.execArgv, path.join(REPO, 'src', 'server.ts')], {
    cwd: REPO,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return { child, logs: () => out, exited }
}

export async function startServer (env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServerProcess> {
  const proc = spawnServer(env)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${proc.logs()}`)), timeoutMs)
    const check = (): void => {
      const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.logs())
      if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
    }
    proc.child.stdout!.on('data', check)
    void proc.exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`server exited with ${code} before listening:\n${proc.logs()}`)) })
  })
  return { ...proc, url }
}

/** Wait until the process has logged something matching `pattern` (logs are written after responses). */
export async function waitForLog (logs: () => string, pattern: RegExp, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (pattern.test(logs())) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return false
}
