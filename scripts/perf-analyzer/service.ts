// The service under the perf_analyzer bench: dist/src/server.js as its own process on a free
// port, its CPU time (/proc/PID/stat: every thread, the inference workers included) and the
// inferences its statistics extension counts.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { MODEL } from './run.js'

const TICK_S = 0.01 // USER_HZ: 100 on Linux

export interface Service {
  url: string
  /** host:port of the Open Inference Protocol over gRPC. */
  grpc: string
  pid: number
  proc: ChildProcess
  stop: () => Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

/**
 * dist/src/server.js (npm run build first) on free ports (HTTP and gRPC); resolves once
 * /v2/health/ready is 200. `serverDir`: another build's checkout (a baseline), run from there.
 */
export async function startService (env: Record<string, string> = {}, serverDir = process.cwd()): Promise<Service> {
  const port = await freePort()
  const grpcPort = await freePort()
  const proc = spawn(process.execPath, [path.join(serverDir, 'dist/src/server.js')], {
    cwd: serverDir,
    env: { ...process.env, EXECUTION_PROVIDER: 'cpu', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port), GRPC_PORT: String(grpcPort), ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    await exited
  }
  for (let i = 0; i < 240; i++) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode})`)
    const ok = await fetch(`${url}/v2/health/ready`).then((r) => r.ok, () => false)
    if (ok) return { url, grpc: `127.0.0.1:${grpcPort}`, pid: proc.pid as number, proc, stop }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  await stop()
  throw new Error('the server was not ready in 60 s')
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds (pid: number): number {
  // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * TICK_S
}

/** Successful inferences of the model so far (Triton's statistics extension). */
export async function successCount (url: string, model = MODEL): Promise<number> {
  const res = await fetch(`${url}/v2/models/${model}/stats`)
  const body = await res.json() as { model_stats: Array<{ inference_stats: { success: { count: number } } }> }
  return body.model_stats[0]?.inference_stats.success.count ?? 0
}
