// npm run reload: SIGHUP to the servers started from this checkout.
//
// `npm start` runs the server as a child of npm, and npm forwards SIGINT and SIGTERM to it but
// not SIGHUP: `kill -HUP <pid of npm start>` ends npm and leaves the server running, orphaned.
// This finds the server processes themselves (Linux /proc: node running this checkout's
// dist/src/server.js or src/server.ts) and signals them, so nobody has to look up a PID.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { packageRoot } from '../../package-root.js'
import { HelpRequest, UsageError } from './args.js'
import { runCli } from './main.js'

export const USAGE = `usage: npm run reload

Sends SIGHUP to every isomax-serve server started from this checkout (node dist/src/server.js,
as npm start runs it): each reloads models/manifest.json (validate, load, swap; a failure changes
nothing) and logs the outcome with its duration. Exit 1 when no server is running.`

export interface ServerPid { pid: number, command: string }

/** The processes under procDir whose command line runs this checkout's server entry point. */
export function findServers (root: string, procDir = '/proc', self = process.pid): ServerPid[] {
  const entries = new Set([path.join(root, 'dist', 'src', 'server.js'), path.join(root, 'src', 'server.ts')])
  const found: ServerPid[] = []
  for (const name of readdirSync(procDir)) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === self) continue
    let argv: string[]
    let cwd: string
    try {
      argv = readFileSync(path.join(procDir, name, 'cmdline'), 'utf8').split('\0').filter((a) => a !== '')
      cwd = readlinkSync(path.join(procDir, name, 'cwd'))
    } catch {
      continue // gone meanwhile, or another user's
    }
    if (argv.length < 2 || !/^node(js)?$/.test(path.basename(argv[0]!))) continue
    if (argv.slice(1).some((a) => !a.startsWith('-') && entries.has(path.resolve(cwd, a)))) {
      found.push({ pid, command: argv.join(' ') })
    }
  }
  return found
}

export function reload (argv: string[], root = packageRoot(import.meta.dirname)): ServerPid[] {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequest(USAGE)
  if (argv.length > 0) throw new UsageError(`unexpected argument "${argv[0]!}"\n${USAGE}`)
  const servers = findServers(root)
  if (servers.length === 0) throw new Error(`no isomax-serve server started from ${root} is running (looked for node dist/src/server.js)`)
  for (const s of servers) {
    process.kill(s.pid, 'SIGHUP')
    process.stdout.write(`reload: SIGHUP sent to pid ${s.pid} (${s.command}); its log says when the new models serve\n`)
  }
  return servers
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  await runCli('reload', async () => { reload(process.argv.slice(2)) })
}
