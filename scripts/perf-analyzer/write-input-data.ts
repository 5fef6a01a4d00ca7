// Writes perf_analyzer's --input-data file of real Fashion-MNIST PNGs (input-data.ts), for a
// run by hand:
//   node --import @tapjs/typescript/import scripts/perf-analyzer/write-input-data.ts OUT.json [DIR]
//   .ci/.venv-perf/bin/perf-analyzer -m fashion-mnist-isomaxplus-md -u localhost:8080 -i http --input-data OUT.json
import { writeFileSync } from 'node:fs'
import { fashionPngs, inputData } from './input-data.js'

const [out, dir] = process.argv.slice(2)
if (out === undefined) throw new Error('usage: write-input-data.ts OUT.json [DIR]')
writeFileSync(out, JSON.stringify(inputData(fashionPngs(dir))))
