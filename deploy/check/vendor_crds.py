"""Extract the openAPIV3Schema of one served version from an upstream CRD file, for check_manifests.py.

Usage: python deploy/check/vendor_crds.py CRD.yaml VERSION OUT.json [OMIT ...]

Only the schema is kept, and its `description` keywords are dropped: they are documentation,
not validation, and make up most of the bytes (the InferenceService CRD is 1.9 MB of YAML).
Each OMIT (a dotted field path such as spec.transformer) replaces a subtree our manifests do not
use with {"x-isomax-not-vendored": true}, which check_manifests.py rejects if a manifest sets
it: leaving a part out never lets a field through unchecked. Every other keyword is kept as
upstream wrote it. crds/README.md says where each file came from and with which arguments.
"""
import json
import sys

import yaml


def strip_descriptions(node, in_properties=False):
    # Inside `properties` the keys are field names (a field may be called "description");
    # everywhere else `description` is the documentation keyword.
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    if in_properties:
        return {name: strip_descriptions(schema) for name, schema in node.items()}
    return {key: strip_descriptions(value, key in ('properties', 'patternProperties', 'definitions'))
            for key, value in node.items() if key != 'description'}


def omit(schema, dotted):
    node = schema
    *parents, last = dotted.split('.')
    for name in parents:
        node = node['properties'][name]
    if last not in node['properties']:
        sys.exit(f'no field {dotted} in the schema')
    node['properties'][last] = {'x-isomax-not-vendored': True}


def main(crd_path, version, out_path, *omitted):
    with open(crd_path, encoding='utf-8') as f:
        crd = yaml.safe_load(f)
    matches = [v for v in crd['spec']['versions'] if v['name'] == version]
    if len(matches) != 1:
        sys.exit(f'{crd_path}: no version {version} (has {[v["name"] for v in crd["spec"]["versions"]]})')
    schema = strip_descriptions(matches[0]['schema']['openAPIV3Schema'])
    for dotted in omitted:
        omit(schema, dotted)
    vendored = {
        'group': crd['spec']['group'],
        'kind': crd['spec']['names']['kind'],
        'version': version,
        'omitted': list(omitted),
        'openAPIV3Schema': schema,
    }
    with open(out_path, 'w', encoding='utf-8') as f:
        json.dump(vendored, f, separators=(',', ':'), sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
