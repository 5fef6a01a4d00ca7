// npm run models -- add|list|remove|quantize
//
// Manages the manifest's model entries so nobody writes one by hand: `add` reads what it can
// from the ONNX graph and copies the file next to the manifest, `list` shows what is there,
// `remove` takes an entry out. The `ood` block stays calibrate's alone.
import path from 'node:path'
import { HelpRequest, synopsis, UsageError } from './args.js'
import { runCli } from './main.js'
import { ADD_USAGE, addModel } from './models-add.js'
import { LIST_USAGE, listModels } from './models-list.js'
import { QUANTIZE_USAGE, quantizeModel } from './models-quantize.js'
import { REMOVE_USAGE, removeModel } from './models-remove.js'

const USAGE = `usage: npm run models -- add|list|remove|quantize [options]

  add      add an ONNX classifier to the manifest (and calibrate it, with --calibrate)
  list     list the manifest's models
  remove   remove a model from the manifest and delete the files the tools wrote for it
  quantize add an INT8 variant of a served model (calibrated, compared with it)

Run "npm run models -- COMMAND --help" for a command's options. Every command takes
--manifest FILE (default: $MODELS_MANIFEST, else models/manifest.json).

${synopsis(ADD_USAGE).split('\n')[0]!}
${synopsis(LIST_USAGE).split('\n')[0]!}
${synopsis(REMOVE_USAGE).split('\n')[0]!}
${synopsis(QUANTIZE_USAGE).split('\n')[0]!}`

export async function models (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'add': await addModel(rest, env); return
    case 'list': await listModels(rest, env); return
    case 'remove': await removeModel(rest, env); return
    case 'quantize': await quantizeModel(rest, env); return
    case '--help': case '-h': case 'help': throw new HelpRequest(USAGE)
    case undefined: throw new UsageError(`missing command\n${synopsis(USAGE)}`)
    default: throw new UsageError(`unknown command "${command}": expected add, list, remove or quantize\n${synopsis(USAGE)}`)
  }
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  await runCli('models', async () => { await models(process.argv.slice(2)) })
}
