// The manifest as `npm run models` edits it: the raw JSON (entries it does not touch stay
// exactly as they were, defaults not filled in), validated as the service validates it
// before anything is written, and written atomically (temporary file, then rename).
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseManifest } from '../../registry/load-manifest.js'
import { writeFileAtomic } from './update-manifest.js'
import { UsageError } from './args.js'

/** The names `models add` gives a model's ONNX file in its folder: model.onnx, or model-<sha256 prefix>.onnx for a replacement. */
export const MODEL_FILE = /^model(-[0-9a-f]+)*\.onnx$/

export interface RawEntry extends Record<string, unknown> {
  name: string
  path: string
}

export interface RawManifest {
  default: string
  models: RawEntry[]
}

/** The manifest, validated; undefined when the file does not exist (add may create it). */
export async function readManifestFile (file: string): Promise<RawManifest | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UsageError(`${file}: cannot read the manifest (${(err as Error).message})`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${file}: not valid JSON (${(err as Error).message}); fix it first`)
  }
  parseManifest(file, raw) // an invalid manifest is the user's to fix: never build on it
  return raw as RawManifest
}

export async function requireManifestFile (file: string): Promise<RawManifest> {
  const raw = await readManifestFile(file)
  if (raw === undefined) throw new UsageError(`${file}: no such manifest (npm run models -- add creates one)`)
  return raw
}

/** Validate the whole new manifest (throws ManifestError), then write it atomically. */
export async function writeManifestFile (file: string, raw: RawManifest): Promise<void> {
  parseManifest(file, raw)
  await mkdir(path.dirname(file), { recursive: true })
  await writeFileAtomic(file, JSON.stringify(raw, null, 2) + '\n')
}
