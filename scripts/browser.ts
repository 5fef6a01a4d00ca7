// Debian's Chromium (apt-get install chromium), driven by playwright-core: no browser is
// downloaded, playwright-core's own builds are never used. Shared by the browser test
// (test/ui/browser.test.ts) and `npm run screenshot`.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** CHROMIUM_PATH, else Debian's /usr/bin/chromium, else the first chromium on PATH; null when none. */
export function findChromium (): string | null {
  for (const c of [process.env.CHROMIUM_PATH, '/usr/bin/chromium']) if (c !== undefined && c !== '' && existsSync(c)) return c
  const which = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' })
  const found = which.stdout.trim()
  return which.status === 0 && found !== '' ? found : null
}

export const NO_CHROMIUM = 'Chromium is not installed: apt-get install chromium (.ci/run does), or point CHROMIUM_PATH at one'

export async function launchChromium (): Promise<Browser> {
  const executablePath = findChromium()
  if (executablePath === null) throw new Error(NO_CHROMIUM)
  // Headless, as root in CI, where Chromium's sandbox cannot start.
  return await chromium.launch({ executablePath, headless: true, chromiumSandbox: false, args: ['--disable-gpu', '--disable-dev-shm-usage'] })
}
