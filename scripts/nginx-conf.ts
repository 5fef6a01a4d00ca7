// deploy/nginx.conf, read and rendered for a local, unprivileged nginx: the same file that
// docker-compose.yml mounts, with the replicas' addresses, the listen port and every path nginx
// writes (logs, pid, temp files) replaced. Used by scripts/test-deploy.ts and the deploy tests.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../src/tools/datasets/repo-root.js'

export const REPO = repoRoot()
export const NGINX_CONF = path.join(REPO, 'deploy', 'nginx.conf')

const BEGIN = '# upstream-servers:begin'
const END = '# upstream-servers:end'

/** Comments removed, so directives can be matched without tripping over prose. */
export function stripComments (conf: string): string {
  return conf.split('\n').map((line) => {
    // No '#' appears inside a quoted string in deploy/nginx.conf.
    const i = line.indexOf('#')
    return i === -1 ? line : line.slice(0, i)
  }).join('\n')
}

/** Every occurrence of a simple directive (`name arg ...;`), as its argument lists. */
export function directives (conf: string, name: string): string[][] {
  const out: string[][] = []
  const re = new RegExp(`(?:^|[\\s{;])${name}\\s+([^;{}]*);`, 'g')
  for (const m of stripComments(conf).matchAll(re)) out.push(m[1]!.trim().split(/\s+/))
  return out
}

/** The one occurrence of a directive; throws when there is none or more than one. */
export function directive (conf: string, name: string): string[] {
  const all = directives(conf, name)
  if (all.length !== 1) throw new Error(`deploy/nginx.conf: expected one "${name}" directive, found ${all.length}`)
  return all[0]!
}

/** nginx's size syntax (10m, 512k, 1g, bytes) in bytes. */
export function nginxSize (value: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value)
  if (m === null) throw new Error(`not an nginx size: ${value}`)
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']
  return Number(m[1]) * unit
}

/** The upstream server lines between the markers, as address and parameters. */
export function upstreamServers (conf: string): Array<{ address: string, params: string[] }> {
  const begin = conf.indexOf(BEGIN)
  const end = conf.indexOf(END)
  if (begin === -1 || end === -1 || end < begin) throw new Error(`deploy/nginx.conf: missing "${BEGIN}" … "${END}" markers`)
  return directives(conf.slice(begin + BEGIN.length, end), 'server').map(([address, ...params]) => ({ address: address!, params }))
}

export interface RenderOptions {
  /** host:port of each replica. */
  upstreams: string[]
  /** What nginx listens on, e.g. 127.0.0.1:40123. */
  listen: string
  /** Directory for the pid file, logs and temp files (absolute). */
  dir: string
}

function replaceOnce (conf: string, re: RegExp, replacement: string, what: string): string {
  const matches = conf.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g'))
  if (matches?.length !== 1) throw new Error(`deploy/nginx.conf: expected one ${what}, found ${matches?.length ?? 0}`)
  return conf.replace(re, replacement)
}

/**
 * deploy/nginx.conf for a foreground nginx run by an ordinary user: upstream servers are the
 * given addresses with the parameters of the marked line (minus `resolve`, which needs DNS
 * names and nginx >= 1.27.3), and nothing is written outside `dir`.
 */
export function renderNginxConf (source: string, opts: RenderOptions): string {
  const [template] = upstreamServers(source)
  if (template === undefined) throw new Error('deploy/nginx.conf: no server line between the upstream-servers markers')
  const params = template.params.filter((p) => p !== 'resolve')
  const servers = opts.upstreams.map((a) => `        server ${a} ${params.join(' ')};`).join('\n')
  let conf = source.replace(new RegExp(`${BEGIN}[\\s\\S]*?${END}`), `${BEGIN}\n${servers}\n        ${END}`)
  conf = replaceOnce(conf, /^(\s*)listen\s+[^;]+;/m, `$1listen ${opts.listen};`, '"listen" directive')
  conf = replaceOnce(conf, /^(\s*)access_log\s+\S+\s+(\S+);/m, `$1access_log ${opts.dir}/access.log $2;`, '"access_log" directive')
  conf = replaceOnce(conf, /^error_log\s+\S+(\s+\w+)?;/m, `error_log ${opts.dir}/error.log$1;`, 'main "error_log" directive')
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `    ${k}_temp_path ${opts.dir}/temp/${k};`).join('\n')
  conf = replaceOnce(conf, /^http\s*\{/m, `http {\n${temp}\n`, '"http {" block')
  return `# Rendered from deploy/nginx.conf for a local test run.\ndaemon off;\npid ${opts.dir}/nginx.pid;\n\n${conf}`
}

/**
 * Writes the rendered deploy/nginx.conf to `<dir>/nginx.conf` and creates its temp folder.
 * The folder is made world-readable: nginx started by root runs its workers as nobody.
 */
export function writeNginxConf (opts: RenderOptions): string {
  mkdirSync(path.join(opts.dir, 'temp'), { recursive: true })
  chmodSync(opts.dir, 0o755)
  const file = path.join(opts.dir, 'nginx.conf')
  writeFileSync(file, renderNginxConf(readNginxConf(), opts))
  return file
}

export function readNginxConf (): string {
  return readFileSync(NGINX_CONF, 'utf8')
}

/** Debian's nginx (package nginx-light), or NGINX_BIN, or the first nginx on PATH. */
export function findNginx (): string | null {
  const candidates = [process.env.NGINX_BIN, '/usr/sbin/nginx']
  for (const c of candidates) if (c !== undefined && c !== '' && existsSync(c)) return c
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' })
  const found = which.stdout.trim()
  return which.status === 0 && found !== '' ? found : null
}

/** `nginx -t` on a rendered config: the exit status and what nginx said. */
export function nginxTest (nginx: string, confFile: string, dir: string): { ok: boolean, output: string } {
  const r = spawnSync(nginx, ['-t', '-p', `${dir}/`, '-c', confFile, '-e', path.join(dir, 'error.log')], { encoding: 'utf8' })
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() }
}
