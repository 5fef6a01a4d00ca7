// The package's root folder (where package.json is), found from a module's own folder: the same
// answer from src/ (the TypeScript loader, tests) and from dist/src/ (npm start, the image).
import { existsSync } from 'node:fs'
import path from 'node:path'

/** The nearest folder at or above `from` that holds package.json. */
export function packageRoot (from: string): string {
  let dir = path.resolve(from)
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`no package.json at or above ${from}`)
    dir = up
  }
  return dir
}
