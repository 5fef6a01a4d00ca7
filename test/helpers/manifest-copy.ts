// A private copy of models/ (manifest + ONNX files) for tests that rewrite the manifest.
import { cpSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { MANIFEST } from './data.js'

export function copyModels (): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'isomax-models-'))
  cpSync(path.dirname(MANIFEST), dir, { recursive: true })
  return path.join(dir, 'manifest.json')
}
