// The Python side of `models quantize`: onnxruntime's quantisation tooling (training/quantize/
// quantize.py) in its own pinned venv, made on first use by training/quantize/venv.sh, so a user
// needs nothing but Debian's python3-venv and pip's registry the first time.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { repoRoot } from '../datasets/repo-root.js'
import { UsageError } from './args.js'

export interface QuantizeVariant {
  firstConv: 'int8' | 'float'
  error: Record<string, { maxAbs: number, meanAbs: number, maxRel: number }>
  argmaxAgreement: number | null
  excluded: string[]
  imagesPerCpuSecond: { 1: number, 32: number }
}

/** quantize.py's JSON report. */
export interface QuantizeReport {
  tool: string
  format: string
  weights: string
  activations: string
  calibration: string
  quantisedOps: string[]
  trunk: string[]
  keptFloat: string[]
  tail: string[]
  firstConv: string[]
  chosen: 'int8' | 'float'
  agreementSlack: number
  floatImagesPerCpuSecond: { 1: number, 32: number }
  variants: QuantizeVariant[]
  threads: number
  reduceRange: boolean
  cpuFlags: string[]
}

function run (command: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    // The venv's first-use messages are the user's to see; pip's and Python's noise past that is kept for an error.
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d
      if (d.startsWith('quantize: ')) process.stderr.write(d)
    })
    child.on('error', (e) => { reject(new UsageError(`${what}: cannot run ${command} (${e.message})`)) })
    child.on('close', (code) => {
      if (code === 0) resolve(out)
      else reject(new Error(`${what} failed (exit ${code}): ${err.trim().split('\n').slice(-8).join('\n')}`))
    })
  })
}

/** The venv's python, made or checked by training/quantize/venv.sh (QUANTIZE_VENV overrides where). */
export async function quantizePython (env: NodeJS.ProcessEnv): Promise<string> {
  const script = path.join(repoRoot(), 'training', 'quantize', 'venv.sh')
  const out = await run('bash', [script, ...(env.QUANTIZE_VENV !== undefined ? [env.QUANTIZE_VENV] : [])], env, 'the quantisation venv (training/quantize/venv.sh)')
  return out.trim().split('\n').at(-1)!
}

export async function runQuantize (python: string, args: { model: string, out: string, tensors: string, shape: readonly number[], firstConv: string, reduceRange: boolean }, env: NodeJS.ProcessEnv): Promise<QuantizeReport> {
  const script = path.join(repoRoot(), 'training', 'quantize', 'quantize.py')
  const out = await run(python, [script, '--model', args.model, '--out', args.out, '--tensors', args.tensors, '--shape', args.shape.join(','), '--first-conv', args.firstConv, ...(args.reduceRange ? ['--reduce-range'] : [])], env, 'training/quantize/quantize.py')
  return JSON.parse(out.trim().split('\n').at(-1)!) as QuantizeReport
}
