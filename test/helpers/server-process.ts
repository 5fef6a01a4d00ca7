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
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', GRPC_PORT: '0', EXECUTION_PROVIDER: 'cpu', INFERENCE_WORKERS: '1', ...env },
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

/**
 * Resolve true once the process has logged something matching `pattern` (checked on every
 * chunk it writes, so no polling), false after `timeoutMs`.
 */
export async function waitForLog (proc: Pick<ServerProcess, 'child' | 'logs'>, pattern: RegExp, timeoutMs = 5000): Promise<boolean> {
  if (pattern.test(proc.logs())) return true
  return await new Promise<boolean>((resolve) => {
    const done = (found: boolean): void => {
      clearTimeout(timer)
      proc.child.stdout!.off('data', check)
      proc.child.stderr!.off('data', check)
      resolve(found)
    }
    // Listeners run in registration order: spawnServer's own listener has appended the chunk.
    const check = (): void => { if (pattern.test(proc.logs())) done(true) }
    const timer = setTimeout(() => done(false), timeoutMs)
    proc.child.stdout!.on('data', check)
    proc.child.stderr!.on('data', check)
  })
}

/** host:port of a started server's gRPC port (GRPC_PORT=0: the one it logged), once it listens. */
export async function grpcAddress (proc: Pick<ServerProcess, 'child' | 'logs'>, timeoutMs = 10_000): Promise<string> {
  const pattern = /gRPC listening at (127\.0\.0\.1:\d+)/
  if (!await waitForLog(proc, pattern, timeoutMs)) throw new Error(`no gRPC port in the logs:\n${proc.logs()}`)
  return pattern.exec(proc.logs())![1]!
}
