// The repository root (where package.json is), from src/ when run by the TypeScript loader or
// from dist/src/ when compiled.
import { packageRoot } from '../../package-root.js'

export function repoRoot (): string {
  return packageRoot(import.meta.dirname)
}
