// A private copy of models/ (manifest + ONNX files) for tests that rewrite the manifest.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { MANIFEST } from './data.js'

export function copyModels (): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-models-'))
  cpSync(path.dirname(MANIFEST), dir, { recursive: true })
  return path.join(dir, 'manifest.json')
}

/** Rewrite a manifest copy: parse, change, write back (plain write: tests control timing). */
export function editManifest (file: string, change: (m: any) => void): void {
  const m = JSON.parse(readFileSync(file, 'utf8'))
  change(m)
  writeFileSync(file, JSON.stringify(m, null, 2))
}
