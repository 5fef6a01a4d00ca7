// A command-line tool run in this process as runCli runs it (src/tools/cli/main.ts): what it
// prints on stdout and stderr, and the exit code it sets, with process.exitCode left as it was.
import { runCli } from '../../src/tools/cli/main.js'

export interface Run { code: number, stdout: string, stderr: string }

export async function cli (tool: string, fn: () => Promise<unknown>): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  const saved = process.exitCode
  process.exitCode = 0
  process.stdout.write = ((chunk: string) => { out.push(String(chunk)); return true }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string) => { err.push(String(chunk)); return true }) as typeof process.stderr.write
  let code: number
  try {
    await runCli(tool, async () => { await fn() })
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
    code = Number(process.exitCode ?? 0)
    process.exitCode = saved
  }
  return { code, stdout: out.join(''), stderr: err.join('') }
}

/** `fn` with stdout captured and stderr silenced (a tool called as a function, not through runCli): its value and what it printed. */
export async function quietly<T> (fn: () => Promise<T>): Promise<{ value: T, stdout: string }> {
  const out: string[] = []
  const stdout = process.stdout.write.bind(process.stdout)
  const stderr = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((chunk: string) => { out.push(String(chunk)); return true }) as typeof process.stdout.write
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    return { value: await fn(), stdout: out.join('') }
  } finally {
    process.stdout.write = stdout
    process.stderr.write = stderr
  }
}
