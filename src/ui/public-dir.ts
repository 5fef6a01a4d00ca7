// Where the try-it page's files are. They are served as they are, never compiled, so they stay
// in src/ui/public whether this module runs from src/ui (tests) or from dist/src/ui (npm start,
// the Docker image, which copies the folder to the same place under /app).
import path from 'node:path'
import { packageRoot } from '../package-root.js'

export const PUBLIC_DIR = path.join(packageRoot(import.meta.dirname), 'src', 'ui', 'public')
