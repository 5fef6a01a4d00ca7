// deploy/check/check_manifests.py: every YAML under deploy/ passes what a cluster checks
// (Kubernetes 1.33's schemas, strict; the vendored CRD schemas, strict; Knative's container
// rules for the KServe runtime), and the check refuses what a cluster would refuse: a
// reserved environment variable in the ServingRuntime, an unknown field in a Deployment.
// Its Python comes from MANIFEST_CHECK_PYTHON, else the test venv .ci/.venv; a venv without
// the pinned packages fails the test with the command that makes one.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parseDocument } from 'yaml'
import { REPO } from '../helpers/data.js'

const DEPLOY = path.join(REPO, 'deploy')
const CHECK = path.join(DEPLOY, 'check', 'check_manifests.py')
const REQUIREMENTS = path.join('deploy', 'check', 'requirements.txt')
const PYTHON = process.env.MANIFEST_CHECK_PYTHON ?? path.join(REPO, '.ci', '.venv', 'bin', 'python')
const MAKE_VENV = `/usr/bin/python3 -m venv .ci/.venv && .ci/.venv/bin/pip install -r ${REQUIREMENTS}`

interface Run { status: number | null, stdout: string, stderr: string }
const check = (dir: string): Run => {
  const r = spawnSync(PYTHON, [CHECK, dir], { encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}` }
}

const probe = spawnSync(PYTHON, ['-c', 'import kubernetes_validate, jsonschema, yaml'], { encoding: 'utf8' })
const ready = probe.status === 0
t.ok(ready, `the manifest check needs a venv with ${REQUIREMENTS} at ${PYTHON} (or set MANIFEST_CHECK_PYTHON). Make it from the repository root with:\n  ${MAKE_VENV}\n${probe.error?.message ?? probe.stderr}`)

/** A copy of deploy/ with one file changed by `edit`, checked, then removed. */
function checkEdited (t: Test, file: string, edit: (doc: ReturnType<typeof parseDocument>) => void): Run {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'manifest-check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(DEPLOY, dir, { recursive: true })
  const doc = parseDocument(readFileSync(path.join(dir, file), 'utf8'))
  edit(doc)
  writeFileSync(path.join(dir, file), doc.toString())
  return check(dir)
}

if (ready) {
  t.test('every manifest under deploy/ passes', async (t) => {
    const r = check(DEPLOY)
    t.equal(r.status, 0, r.stdout + r.stderr)
    // One line per object, with the schema it was checked against.
    for (const [file, object] of [
      ['k8s/deployment.yaml', 'Deployment/isomax-serve (Kubernetes 1.33'],
      ['k8s/deployment-gpu.yaml', 'Deployment/isomax-serve-gpu (Kubernetes 1.33'],
      ['k8s/service.yaml', 'Service/isomax-serve (Kubernetes 1.33'],
      ['k8s/hpa.yaml', 'HorizontalPodAutoscaler/isomax-serve (Kubernetes 1.33'],
      ['k8s/pdb.yaml', 'PodDisruptionBudget/isomax-serve (Kubernetes 1.33'],
      ['k8s/monitoring/podmonitor.yaml', 'PodMonitor/isomax-serve (CRD schema'],
      ['k8s/monitoring/prometheusrule.yaml', 'PrometheusRule/isomax-serve (CRD schema'],
      ['kserve/servingruntime.yaml', 'ServingRuntime/isomax-serve (CRD schema servingruntimes.serving.kserve.io-v1alpha1.json + Knative container rules'],
      ['kserve/inferenceservice.yaml', 'InferenceService/fashion-mnist (CRD schema inferenceservices.serving.kserve.io-v1beta1.json + Knative container rules'],
      ['kserve/inferenceservice-pvc.yaml', 'InferenceService/fashion-mnist (CRD schema'],
      ['kserve/s3-credentials.yaml', 'Secret/isomax-s3 (Kubernetes 1.33'],
      ['kserve/s3-credentials.yaml', 'ServiceAccount/isomax-models (Kubernetes 1.33'],
      ['k8s/kustomization.yaml', 'Kustomization/k8s (every object file listed']
    ] as const) t.ok(r.stdout.includes(`ok   ${file}: ${object}`), `${file}: ${object.split(' ')[0]} passes`)
    t.match(r.stdout, /0 problem\(s\)/)
  })

  t.test('a reserved environment variable in the ServingRuntime fails, as Knative refuses it', async (t) => {
    const r = checkEdited(t, 'kserve/servingruntime.yaml', (doc) => {
      doc.addIn(['spec', 'containers', 0, 'env'], { name: 'PORT', value: '8080' })
    })
    t.equal(r.status, 1, r.stdout + r.stderr)
    t.match(r.stderr, /kserve\/servingruntime\.yaml: ServingRuntime\/isomax-serve: spec\.containers\[0\]\.env\[\d+\]\.name: "PORT" is a reserved environment variable/)
  })

  t.test('an unknown field in a Deployment fails, as strict field validation refuses it', async (t) => {
    const r = checkEdited(t, 'k8s/deployment.yaml', (doc) => {
      // A misspelt field (timeoutSecond) that a lenient apply would drop without a word.
      doc.setIn(['spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'timeoutSecond'], 2)
    })
    t.equal(r.status, 1, r.stdout + r.stderr)
    t.match(r.stderr, /k8s\/deployment\.yaml: Deployment\/isomax-serve: unknown field "spec\.template\.spec\.containers\[0\]\.readinessProbe\.timeoutSecond"/)
  })

  t.test('an unknown field in a custom resource fails against the vendored CRD schema', async (t) => {
    const r = checkEdited(t, 'kserve/inferenceservice.yaml', (doc) => {
      doc.setIn(['spec', 'predictor', 'model', 'storageURI'], 's3://bucket/models')
    })
    t.equal(r.status, 1, r.stdout + r.stderr)
    t.match(r.stderr, /unknown field "spec\.predictor\.model\.storageURI"/)
  })
}
