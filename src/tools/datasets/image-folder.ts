// A folder of images: flat (no labels) or one subfolder per class (label = folder name).
import { readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { DatasetError, type Dataset, type Sample } from './types.js'

interface Entry { file: string, labelName?: string }

async function listFiles (dir: string): Promise<string[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && !d.name.startsWith('.'))
    .map((d) => d.name)
  return names.sort()
}

export async function imageFolder (dir: string): Promise<Dataset> {
  let info
  try {
    info = await stat(dir)
  } catch {
    throw new DatasetError(`${dir}: no such file or directory`)
  }
  if (!info.isDirectory()) throw new DatasetError(`${dir}: not a directory`)
  const dirents = await readdir(dir, { withFileTypes: true })
  const subdirs = dirents.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort()
  const entries: Entry[] = []
  if (subdirs.length > 0) {
    for (const sub of subdirs) {
      for (const f of await listFiles(path.join(dir, sub))) entries.push({ file: path.join(dir, sub, f), labelName: sub })
    }
  } else {
    for (const f of await listFiles(dir)) entries.push({ file: path.join(dir, f) })
  }
  if (entries.length === 0) throw new DatasetError(`${dir}: no image files found (expected images, or one subfolder of images per class)`)
  const labelled = subdirs.length > 0
  return {
    description: `image folder ${path.resolve(dir)} (${entries.length} files${labelled ? `, ${subdirs.length} class folders` : ''})`,
    size: entries.length,
    async * samples (): AsyncIterable<Sample> {
      for (const e of entries) {
        const image = await readFile(e.file)
        yield { name: path.relative(dir, e.file), image, ...(e.labelName !== undefined ? { labelName: e.labelName } : {}) }
      }
    }
  }
}
