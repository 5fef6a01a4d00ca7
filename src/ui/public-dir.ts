// Where the try-it page's files are. They are served as they are, never compiled, so they stay
// in src/ui/public whether this module runs from src/ui (tests) or from dist/src/ui (npm start,
// the Docker image, which copies the folder to the same place under /app).
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

export const PUBLIC_DIR = path.join(packageRoot(import.meta.dirname), 'src', 'ui', 'public')
