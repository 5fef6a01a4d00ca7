// Catches SIGHUP from the moment this module is evaluated: server.ts imports it first, so it
// runs before the other imports (Fastify, sharp, ONNX Runtime) and the model loading that
// follow, seconds during which SIGHUP's default action would kill the process. server.ts takes
// the flag over once it can reload. (Node's own start, before any module runs, stays exposed:
// tens of milliseconds.)
let pending = false
const remember = (): void => { pending = true }
process.on('SIGHUP', remember)

/** Stop catching here; true when a SIGHUP arrived meanwhile. */
export function takeEarlySighup (): boolean {
  process.off('SIGHUP', remember)
  return pending
}
