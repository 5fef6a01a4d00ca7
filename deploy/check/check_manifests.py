"""Check every YAML file under deploy/ the way a cluster would before it accepts it.

Usage: python deploy/check/check_manifests.py [DEPLOY_DIR]      (default: the deploy/ above this file)

Needs the packages pinned in deploy/check/requirements.txt. Prints one line per problem,
`file: Kind/name: field: message`, and exits 1 if there is any, 0 otherwise.

- Built-in kinds: kubernetes-validate's strict JSON Schemas for Kubernetes 1.33 (unknown fields
  are errors, as with `kubectl apply --validate=strict`).
- Custom resources: the CRD's openAPIV3Schema for the apiVersion used, vendored in crds/
  (crds/README.md: source, commit, licence), made strict the way the API server's strict field
  validation treats a structural schema: an object's fields are those under `properties`, and
  any other field is an error unless the node has `additionalProperties` (a map) or
  `x-kubernetes-preserve-unknown-fields: true`. `metadata` is checked against Kubernetes 1.33's
  ObjectMeta. CEL rules (x-kubernetes-validations) are not evaluated; the vendored schemas
  hold none.
- ServingRuntime and InferenceService containers: Knative Serving's container rules, because
  KServe's default (Serverless/Knative) mode runs the predictor as a Knative Service; see
  knative_rules() for the upstream file and commit.
- Kustomizations: every listed resource is a file that exists and passes the checks above, and
  every Kubernetes object file beside the kustomization is listed unless
  OPTIONAL_IN_KUSTOMIZATION says why not. Where kubectl is on PATH, `kubectl kustomize` must
  render the folder (offline: it reads local files only) into the objects those files hold.
- Files that are not Kubernetes objects (Prometheus and Grafana configuration) are listed in
  NOT_KUBERNETES; any other YAML without apiVersion and kind is an error, so that a new
  manifest cannot slip past the check.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate.utils as kv
import yaml
from referencing import Registry, Resource

KUBERNETES_VERSION = '1.33'
HERE = os.path.dirname(os.path.abspath(__file__))

# Paths relative to the deploy directory.
NOT_KUBERNETES = {
    'prometheus/prometheus.yml': 'Prometheus configuration (Compose)',
    'prometheus/prometheus-k8s.yml': 'Prometheus configuration (Kubernetes without the operator)',
    'prometheus/rules.yml': 'Prometheus rule file',
    'prometheus/tests/alerts.test.yml': 'promtool rule unit tests',
    'grafana/provisioning/dashboards/isomax.yml': 'Grafana dashboard provider',
    'grafana/provisioning/datasources/prometheus.yml': 'Grafana data source',
}
OPTIONAL_IN_KUSTOMIZATION = {
    'deployment-gpu.yaml': 'the GPU variant, for clusters with NVIDIA GPUs: applied on its own or added to resources',
}

CRD_FILES = {
    ('serving.kserve.io/v1beta1', 'InferenceService'): 'inferenceservices.serving.kserve.io-v1beta1.json',
    ('serving.kserve.io/v1alpha1', 'ServingRuntime'): 'servingruntimes.serving.kserve.io-v1alpha1.json',
    ('monitoring.coreos.com/v1', 'PodMonitor'): 'podmonitors.monitoring.coreos.com-v1.json',
    ('monitoring.coreos.com/v1', 'PrometheusRule'): 'prometheusrules.monitoring.coreos.com-v1.json',
}
NOT_VENDORED = 'x-isomax-not-vendored'


# ---------------------------------------------------------------------------------------------
# Schemas

def kubernetes_schema_dir():
    """kubernetes-validate's newest 1.33 schema set, strict flavour (additionalProperties: false)."""
    versions = [v for v in kv.all_versions() if kv.major_minor(v) == KUBERNETES_VERSION]
    if not versions:
        sys.exit(f'kubernetes-validate {kv.__version__} has no schemas for Kubernetes {KUBERNETES_VERSION}')
    return f'v{versions[-1]}-local-strict'


SCHEMA_DIR = kubernetes_schema_dir()
DEFINITIONS = kv.schema_contents(f'kubernetes-json-schema/{SCHEMA_DIR}/_definitions.json', KUBERNETES_VERSION)
REGISTRY = Resource.from_contents(DEFINITIONS) @ Registry()
OBJECT_META = {'$ref': 'https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'}


def builtin_schema(doc):
    # kubernetes-validate's file naming: apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1
    api = re.sub(r'^([^./]*)(?:\.[^/]*)?/', r'\1-', doc['apiVersion'])
    try:
        return kv.schema_contents(f'kubernetes-json-schema/{SCHEMA_DIR}/{doc["kind"].lower()}-{api}.json', KUBERNETES_VERSION)
    except FileNotFoundError:
        return None


def structural_strict(node):
    """The schema as strict field validation applies it: unknown fields in objects are errors."""
    if not isinstance(node, dict) or node.get(NOT_VENDORED):
        return node
    out = dict(node)
    if isinstance(out.get('properties'), dict):
        out['properties'] = {name: structural_strict(s) for name, s in out['properties'].items()}
    if isinstance(out.get('additionalProperties'), dict):
        out['additionalProperties'] = structural_strict(out['additionalProperties'])
    if isinstance(out.get('items'), dict):
        out['items'] = structural_strict(out['items'])
    # allOf/anyOf/oneOf/not are value validations in a structural schema: they cannot add
    # fields, so they are left as they are.
    if out.get('x-kubernetes-int-or-string') and 'type' not in out:
        out['anyOf'] = [{'type': 'integer'}, {'type': 'string'}] + out.get('anyOf', [])
    if out.get('type') == 'object' and 'additionalProperties' not in out \
            and not out.get('x-kubernetes-preserve-unknown-fields') and not out.get('x-kubernetes-embedded-resource'):
        out['additionalProperties'] = False
    return out


def crd_schema(doc):
    name = CRD_FILES.get((doc['apiVersion'], doc['kind']))
    if name is None:
        return None
    with open(os.path.join(HERE, 'crds', name), encoding='utf-8') as f:
        schema = structural_strict(json.load(f)['openAPIV3Schema'])
    # The API server validates metadata as ObjectMeta whatever the CRD says about it.
    schema['properties'] = {**schema['properties'], 'metadata': OBJECT_META}
    return schema


def not_vendored(validator, value, instance, schema):
    if value:
        yield jsonschema.ValidationError('this part of the CRD schema is not vendored in deploy/check/crds '
                                         '(re-run vendor_crds.py without omitting it)')


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {NOT_VENDORED: not_vendored})


def field_path(path):
    out = ''
    for part in path:
        out += f'[{part}]' if isinstance(part, int) else (f'.{part}' if out else str(part))
    return out or '(root)'


def schema_errors(doc, schema):
    problems = []
    for error in Validator(schema, registry=REGISTRY).iter_errors(doc):
        where = field_path(error.absolute_path)
        if error.validator == 'additionalProperties' and error.validator_value is False:
            allowed = set(error.schema.get('properties', {}))
            allowed_patterns = error.schema.get('patternProperties', {})
            for name in sorted(error.instance):
                if name not in allowed and not any(re.search(p, name) for p in allowed_patterns):
                    full = f'{where}.{name}' if where != '(root)' else name
                    problems.append(f'unknown field "{full}"')
        else:
            problems.append(f'{where}: {error.message}')
    return problems


# ---------------------------------------------------------------------------------------------
# Knative Serving's container rules

# From knative/serving pkg/apis/serving/k8s_validation.go and fieldmask.go at tag knative-v1.23.0
# (commit 7ed4aa2ab601e3a33c6552285f6e0d910747351d; unchanged at 98e5ef90aa70 on main), with
# Knative's defaults from pkg/apis/serving/v1/revision_defaults.go. Only the rules that bear on
# a single serving container as KServe builds it from a ServingRuntime and an InferenceService.
RESERVED_ENV_VARS = {'PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'}   # reservedEnvVars
RESERVED_PORTS = {
    8012,  # networking.BackendHTTPPort (queue-proxy, HTTP/1)
    8013,  # networking.BackendHTTP2Port (queue-proxy, h2c)
    8022,  # networking.QueueAdminPort
    9090,  # networking.AutoscalingQueueMetricsPort
    9091,  # networking.UserQueueMetricsPort
    8008,  # runtime.ProfilingDefaultPort (knative/pkg observability/runtime/pprof.go, 521cb33b33dd)
}
RESERVED_CONTAINER_NAMES = {'queue-proxy'}
VALID_PORT_NAMES = {'', 'h2c', 'http1'}  # validPortNames: the name selects the protocol queue-proxy speaks
# ContainerMask: every other Container field (lifecycle, stdin, tty, volumeDevices, ...) is refused.
CONTAINER_FIELDS = {'name', 'args', 'command', 'env', 'workingDir', 'envFrom', 'image', 'imagePullPolicy',
                    'livenessProbe', 'ports', 'readinessProbe', 'resources', 'securityContext', 'startupProbe',
                    'terminationMessagePath', 'terminationMessagePolicy', 'volumeMounts'}
PORT_FIELDS = {'containerPort', 'name', 'protocol'}                     # ContainerPortMask
ENV_FIELDS = {'name', 'value', 'valueFrom'}                              # EnvVarMask
PROBE_FIELDS = {'httpGet', 'tcpSocket', 'exec', 'grpc', 'initialDelaySeconds', 'timeoutSeconds',
                'periodSeconds', 'successThreshold', 'failureThreshold',
                'terminationGracePeriodSeconds'}                         # ProbeMask + HandlerMask
HTTP_GET_FIELDS = {'host', 'path', 'scheme', 'httpHeaders', 'port'}      # HTTPGetActionMask
RESOURCE_FIELDS = {'limits', 'requests'}                                 # ResourceRequirementsMask
# SecurityContextMask; `privileged` only as false; capabilities.add needs a feature flag
# (ContainerSpecAddCapabilities, or secure-pod-defaults with exactly NET_BIND_SERVICE).
SECURITY_CONTEXT_FIELDS = {'capabilities', 'readOnlyRootFilesystem', 'runAsUser', 'runAsGroup', 'runAsNonRoot',
                           'allowPrivilegeEscalation', 'seccompProfile'}
# PodSpecMask: ServingRuntime spec fields that become pod spec fields Knative refuses unless
# the operator turns the matching feature flag on (all "disabled" by default).
FEATURE_FLAGGED_POD_FIELDS = {'affinity': 'kubernetes.podspec-affinity', 'nodeSelector': 'kubernetes.podspec-nodeselector',
                              'tolerations': 'kubernetes.podspec-tolerations', 'schedulerName': 'kubernetes.podspec-schedulername',
                              'hostIPC': 'kubernetes.podspec-hostipc'}


def disallowed(obj, allowed):
    return sorted(k for k in (obj or {}) if k not in allowed)


def knative_probe(probe, kind, port, problems, where):
    for name in disallowed(probe, PROBE_FIELDS):
        problems.append(f'{where}.{name}: must not set the field(s)')
    handlers = [h for h in ('httpGet', 'tcpSocket', 'exec', 'grpc') if h in probe]
    if kind == 'readinessProbe' and not handlers:
        handlers = ['tcpSocket']  # applyUserContainerDefaultReadinessProbe
    if not handlers:
        problems.append(f'{where}: expected exactly one, got neither: httpGet, tcpSocket, exec, grpc')
    elif len(handlers) > 1:
        problems.append(f'{where}: expected exactly one, got both: {", ".join(handlers)}')
    for handler in ('httpGet', 'tcpSocket'):
        action = probe.get(handler)
        if action is None:
            continue
        if handler == 'httpGet':
            for name in disallowed(action, HTTP_GET_FIELDS):
                problems.append(f'{where}.httpGet.{name}: must not set the field(s)')
        # A named probe port must name the serving port (Knative names an unnamed one "http").
        target = action.get('port')
        if isinstance(target, str) and target != (port.get('name') or 'http'):
            problems.append(f'{where}.{handler}.port: invalid value: {target}: Probe port must match container port')
    if kind != 'readinessProbe':
        return
    # validateReadinessProbe, after applyReadinessProbeDefaults
    period = probe.get('periodSeconds', 0)
    success = probe.get('successThreshold', 0) or 1
    failure = probe.get('failureThreshold', 0) or (3 if period else 0)
    timeout = probe.get('timeoutSeconds', 0) or (1 if period else 0)
    if period < 0:
        problems.append(f'{where}.periodSeconds: expected 0 <= {period}')
    if probe.get('initialDelaySeconds', 0) < 0:
        problems.append(f'{where}.initialDelaySeconds: expected 0 <= {probe["initialDelaySeconds"]}')
    if success < 1:
        problems.append(f'{where}.successThreshold: expected 1 <= {success}')
    if period == 0:
        if 'failureThreshold' in probe and probe['failureThreshold'] != 0:
            problems.append(f'{where}.failureThreshold: failureThreshold is disallowed when periodSeconds is zero')
        if 'timeoutSeconds' in probe and probe['timeoutSeconds'] != 0:
            problems.append(f'{where}.timeoutSeconds: timeoutSeconds is disallowed when periodSeconds is zero')
    else:
        if timeout < 1:
            problems.append(f'{where}.timeoutSeconds: expected 1 <= {timeout}')
        if failure < 1:
            problems.append(f'{where}.failureThreshold: expected 1 <= {failure}')


def knative_container(c, port, problems, where, sidecar=False):
    for name in disallowed(c, CONTAINER_FIELDS):
        problems.append(f'{where}.{name}: must not set the field(s)')
    if c.get('name') in RESERVED_CONTAINER_NAMES:
        problems.append(f'{where}.name: "{c["name"]}" is a reserved container name')
    for i, env in enumerate(c.get('env') or []):
        for name in disallowed(env, ENV_FIELDS):
            problems.append(f'{where}.env[{i}].{name}: must not set the field(s)')
        if env.get('name') in (RESERVED_ENV_VARS - {'PORT'} if sidecar else RESERVED_ENV_VARS):
            problems.append(f'{where}.env[{i}].name: "{env["name"]}" is a reserved environment variable')
    ports = c.get('ports') or []
    for i, p in enumerate(ports):
        for name in disallowed(p, PORT_FIELDS):
            problems.append(f'{where}.ports[{i}].{name}: must not set the field(s)')
        if p.get('containerPort') in RESERVED_PORTS:
            problems.append(f'{where}.ports[{i}].containerPort: {p["containerPort"]} is a reserved port, please use a different value')
    if ports:  # validateContainerPorts looks at the first port, the user port
        if ports[0].get('protocol', 'TCP') != 'TCP':
            problems.append(f'{where}.ports[0].protocol: invalid value: {ports[0]["protocol"]}')
        if ports[0].get('name', '') not in VALID_PORT_NAMES:
            problems.append(f"{where}.ports[0]: Port name {ports[0]['name']} is not allowed: Name must be empty, or one of: 'h2c', 'http1'")
    for kind in ('livenessProbe', 'readinessProbe', 'startupProbe'):
        if kind in c and sidecar:  # validateSidecarContainer, multi-container-probing off (the default)
            problems.append(f'{where}.{kind}: must not set the field(s) (a container without ports is a sidecar)')
        elif kind in c:
            knative_probe(c[kind], kind, port, problems, f'{where}.{kind}')
    for name in disallowed(c.get('resources'), RESOURCE_FIELDS):
        problems.append(f'{where}.resources.{name}: must not set the field(s)')
    sc = c.get('securityContext') or {}
    for name in disallowed(sc, SECURITY_CONTEXT_FIELDS):
        if not (name == 'privileged' and sc[name] is False):
            problems.append(f'{where}.securityContext.{name}: must not set the field(s)')
    if (sc.get('capabilities') or {}).get('add'):
        problems.append(f'{where}.securityContext.capabilities.add: must not set the field(s) (feature flag kubernetes.containerspec-addcapabilities is off by default)')


def knative_rules(doc):
    """The containers KServe puts into the predictor's Knative Service must pass Knative's webhook."""
    problems = []
    if doc['kind'] == 'ServingRuntime':
        spec = doc.get('spec') or {}
        containers = spec.get('containers') or []
        where = 'spec.containers'
        for name, flag in FEATURE_FLAGGED_POD_FIELDS.items():
            if name in spec:
                problems.append(f'spec.{name}: must not set the field(s) (Knative feature flag {flag} is off by default)')
    else:  # InferenceService: the predictor's model fields are merged into the runtime's kserve-container
        predictor = (doc.get('spec') or {}).get('predictor') or {}
        containers = [predictor['model']] if 'model' in predictor else []
        containers += predictor.get('containers') or []
        where = 'spec.predictor'
    # validateContainersPorts: one port across all containers, the serving port.
    all_ports = [p for c in containers for p in (c.get('ports') or [])]
    if len(all_ports) > 1:
        problems.append(f'{where}[*].ports: more than one container port is set: Only a single port is allowed across all containers')
    port = all_ports[0] if all_ports else {}
    for i, c in enumerate(containers):
        if doc['kind'] == 'InferenceService' and c is predictor.get('model'):
            # The model spec is a container plus KServe's own fields, which never reach the pod.
            knative_container({k: v for k, v in c.items() if k not in MODEL_SPEC_FIELDS}, port, problems, f'{where}.model')
        else:
            # validateContainers: with several containers, one without ports is a sidecar.
            sidecar = len(containers) > 1 and not c.get('ports')
            knative_container(c, port, problems, f'{where}[{i}]', sidecar)
    return problems


MODEL_SPEC_FIELDS = {'runtime', 'modelFormat', 'protocolVersion', 'storageUri', 'storage', 'runtimeVersion'}


# ---------------------------------------------------------------------------------------------
# Files

def kustomization_problems(rel, doc, deploy_dir, checked):
    problems = []
    base = os.path.dirname(rel)
    listed = doc.get('resources') or []
    for entry in listed:
        target = os.path.normpath(os.path.join(base, entry))
        if not os.path.isfile(os.path.join(deploy_dir, target)):
            problems.append(f'resources: {entry} is not a file')
        elif target not in checked:
            problems.append(f'resources: {entry} holds no Kubernetes object')
    for other in sorted(checked):
        if os.path.dirname(other) == base and os.path.basename(other) not in listed \
                and os.path.basename(other) not in OPTIONAL_IN_KUSTOMIZATION:
            problems.append(f'resources: {os.path.basename(other)} is not listed (or named in OPTIONAL_IN_KUSTOMIZATION)')
    kubectl = shutil.which('kubectl')
    if kubectl is not None and not problems:
        run = subprocess.run([kubectl, 'kustomize', os.path.join(deploy_dir, base)], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            problems.append(f'kubectl kustomize fails: {run.stderr.strip()}')
        else:
            rendered = sorted((d['kind'], d['metadata']['name']) for d in yaml.safe_load_all(run.stdout) if d)
            expected = sorted((d['kind'], d['metadata']['name']) for e in listed
                              for d in checked[os.path.normpath(os.path.join(base, e))])
            if rendered != expected:
                problems.append(f'kubectl kustomize renders {rendered}, the listed files hold {expected}')
    unknown = disallowed(doc, {'apiVersion', 'kind', 'resources', 'images', 'namespace', 'labels', 'commonLabels',
                               'commonAnnotations', 'patches', 'configMapGenerator', 'secretGenerator', 'replicas'})
    for name in unknown:
        problems.append(f'unknown field "{name}"')
    return problems


def yaml_files(deploy_dir):
    for root, dirs, files in os.walk(deploy_dir):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(('.yaml', '.yml')):
                yield os.path.relpath(os.path.join(root, f), deploy_dir)


def check(deploy_dir):
    problems, results, kustomizations, checked = [], [], [], {}
    for rel in yaml_files(deploy_dir):
        with open(os.path.join(deploy_dir, rel), encoding='utf-8') as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                problems.append(f'{rel}: does not parse: {e}')
                continue
        for doc in docs:
            if not (isinstance(doc, dict) and 'apiVersion' in doc and 'kind' in doc):
                if rel not in NOT_KUBERNETES:
                    problems.append(f'{rel}: neither a Kubernetes object (apiVersion, kind) nor a file named in NOT_KUBERNETES')
                continue
            if rel in NOT_KUBERNETES:
                problems.append(f'{rel}: holds a Kubernetes object but NOT_KUBERNETES says it does not')
            name = f'{doc["kind"]}/{(doc.get("metadata") or {}).get("name", os.path.basename(os.path.dirname(rel)))}'
            if doc['apiVersion'].startswith('kustomize.config.k8s.io/'):
                kustomizations.append((rel, doc, name))
                continue
            checked.setdefault(rel, []).append(doc)
            schema = crd_schema(doc)
            source = f'CRD schema {CRD_FILES.get((doc["apiVersion"], doc["kind"]))}'
            if schema is None:
                schema = builtin_schema(doc)
                source = f'Kubernetes {KUBERNETES_VERSION} ({SCHEMA_DIR})'
            if schema is None:
                found = [f'no schema for {doc["apiVersion"]} {doc["kind"]}: not a Kubernetes {KUBERNETES_VERSION} kind and no CRD schema in deploy/check/crds']
            else:
                found = schema_errors(doc, schema)
            checks = source
            if doc['kind'] in ('ServingRuntime', 'InferenceService'):
                found += knative_rules(doc)
                checks += ' + Knative container rules'
            problems += [f'{rel}: {name}: {p}' for p in found]
            results.append(f'{"ok  " if not found else "FAIL"} {rel}: {name} ({checks})')
    for rel, doc, name in kustomizations:
        found = kustomization_problems(rel, doc, deploy_dir, checked)
        problems += [f'{rel}: {name}: {p}' for p in found]
        how = 'rendered by kubectl kustomize' if shutil.which('kubectl') else 'kubectl not found: resources resolve to files'
        results.append(f'{"ok  " if not found else "FAIL"} {rel}: {name} (every object file listed; {how})')
    return results, problems


def main(argv):
    deploy_dir = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(HERE, '..'))
    results, problems = check(deploy_dir)
    for line in results:
        print(line)
    for p in problems:
        print(f'error: {p}', file=sys.stderr)
    print(f'{len(results)} objects checked, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
