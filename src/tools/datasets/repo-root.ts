// The repository root (where package.json is), from src/ when run by the TypeScript loader or
// from dist/src/ when compiled.
import { existsSync } from 'node:fs'
import path from 'node:path'

export function repoRoot (): string {
  let dir = import.meta.dirname
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error('cannot find the repository root (package.json) above ' + import.meta.dirname)
    dir = up
  }
}
