import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { ManifestSchema } from '../../src/registry/manifest-schema.js'
import { MANIFEST_SCHEMA_COMMAND, MANIFEST_SCHEMA_FILE, generateManifestSchema } from '../../scripts/manifest-schema.js'
import { MANIFEST } from '../helpers/data.js'

const committed = readFileSync(MANIFEST_SCHEMA_FILE, 'utf8')
const shipped = JSON.parse(readFileSync(MANIFEST, 'utf8'))
// strict: an unknown keyword or a malformed schema is an error here, not a silent pass.
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(committed))

function errorsOf (doc: unknown): string[] {
  return validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`)
}

t.test(`models/manifest.schema.json is what the zod schema generates (run \`${MANIFEST_SCHEMA_COMMAND}\` if not)`, async (t) => {
  t.equal(committed, generateManifestSchema(), `stale models/manifest.schema.json: run \`${MANIFEST_SCHEMA_COMMAND}\` ` +
    '(node --import @tapjs/typescript/import scripts/manifest-schema.ts) and commit the result')
})

t.test('the shipped manifest is valid against the JSON Schema', async (t) => {
  t.same(errorsOf(shipped), [])
})

t.test('an entry without an OOD block (as training writes it) and without a defaulted field is valid', async (t) => {
  const m = structuredClone(shipped)
  delete m.models[0].ood
  delete m.models[0].input.fit
  t.same(errorsOf(m), [])
  t.ok(ManifestSchema.safeParse(m).success, 'and zod agrees')
})

t.test('broken manifests are refused, as zod refuses them', async (t) => {
  const cases: Array<[string, (m: any) => void, RegExp]> = [
    ['no sha256', (m) => { delete m.models[0].sha256 }, /^\/models\/0 must have required property 'sha256'/],
    ['a short sha256', (m) => { m.models[0].sha256 = 'abc' }, /^\/models\/0\/sha256 must match pattern/],
    ['an unknown field', (m) => { m.models[0].extra = 1 }, /^\/models\/0 must NOT have additional properties/],
    ['a string threshold', (m) => { m.models[0].ood.threshold = 'low' }, /^\/models\/0\/ood\/threshold must be number/],
    ['an unknown score kind', (m) => { m.models[0].ood.score = 'odin' }, /^\/models\/0\/ood\/score must be equal to one of the allowed values/],
    ['an OOD block without its calibration record', (m) => { delete m.models[0].ood.calibration }, /^\/models\/0\/ood must have required property 'calibration'/],
    ['a target TPR of 1', (m) => { m.models[0].ood.calibration.targetTpr = 1 }, /^\/models\/0\/ood\/calibration\/targetTpr must be < 1/],
    ['2 channels', (m) => { m.models[0].input.channels = 2 }, /^\/models\/0\/input\/channels must be equal to constant/],
    ['a fractional height', (m) => { m.models[0].input.height = 27.5 }, /^\/models\/0\/input\/height must be integer/],
    ['an unknown resize fit', (m) => { m.models[0].input.fit = 'stretch' }, /^\/models\/0\/input\/fit must be equal to one of the allowed values/],
    ['one label', (m) => { m.models[0].labels = ['only'] }, /^\/models\/0\/labels must NOT have fewer than 2 items/],
    ['an upper-case name', (m) => { m.models[0].name = 'Fashion' }, /^\/models\/0\/name must match pattern/],
    ['no models', (m) => { m.models = [] }, /^\/models must NOT have fewer than 1 items/],
    ['no batching', (m) => { delete m.models[0].batching }, /^\/models\/0 must have required property 'batching'/]
  ]
  for (const [what, breakIt, expected] of cases) {
    const m = structuredClone(shipped)
    breakIt(m)
    const errors = errorsOf(m)
    t.ok(errors.some((e) => expected.test(e)), `${what}: ${errors.join('; ') || 'accepted'}`)
    t.notOk(ManifestSchema.safeParse(m).success, `${what}: zod refuses it too`)
  }
})
