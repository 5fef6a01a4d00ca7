// Test only: ISOMAX_TEST_PAUSE_AFTER=<step> makes a tool that rewrites the manifest stop for good
// right after that step and say so on stderr ("paused after <step>"), so a test can SIGKILL it
// at a known moment instead of hoping to hit one (test/tools/cli/models-concurrency.slow.ts).
// The steps, in order: staged (models add: the copy checked, no lock yet), locked (the lock
// held, the manifest read again, nothing changed), renamed (the new file under its final name,
// the manifest not yet written), manifest (the manifest written, old files not yet deleted).
// Unset, as everywhere but in that test, it does nothing.
export async function pauseAfter (step: 'staged' | 'locked' | 'renamed' | 'manifest', env: NodeJS.ProcessEnv): Promise<void> {
  if (env.ISOMAX_TEST_PAUSE_AFTER !== step) return
  process.stderr.write(`paused after ${step} (ISOMAX_TEST_PAUSE_AFTER, for tests only)\n`)
  await new Promise<never>(() => { setInterval(() => {}, 60_000) })
}
