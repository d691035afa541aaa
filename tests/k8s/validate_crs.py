#!/usr/bin/env python3
"""Validates custom resources (Istio's, the Gateway API's) against the OpenAPI schemas of their
CustomResourceDefinitions.

usage: validate_crs.py CRDS FILE.yaml...

CRDS is a YAML file of CRDs, or a directory whose *.yaml files are read. Every document whose
kind has a CRD there is checked against the schema of its apiVersion (unknown fields rejected,
as the API server does); documents of other kinds are skipped, and counted apart, so that a
caller can tell a skipped resource from a checked one. Exits 1 listing every violation, 0 when
all pass.
"""

import os
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with unknown properties rejected, as a structural CRD schema prunes them."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def main(crds_path, paths):
    schemas = {}
    if os.path.isdir(crds_path):
        crd_files = [os.path.join(crds_path, name) for name in sorted(os.listdir(crds_path)) if name.endswith(".yaml")]
    else:
        crd_files = [crds_path]
    for crd_file in crd_files:
        with open(crd_file) as crds:
            crd_documents = list(yaml.safe_load_all(crds))
        for crd in crd_documents:
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    schemas[(f"{group}/{version['name']}", kind)] = strict(schema)
    failures, checked, skipped = [], 0, 0
    for path in paths:
        with open(path) as file:
            for index, document in enumerate(yaml.safe_load_all(file), start=1):
                if not document:
                    continue
                key = (document.get("apiVersion"), document.get("kind"))
                schema = schemas.get(key)
                if schema is None:
                    skipped += 1
                    continue
                # apiVersion, kind and metadata are the API server's own; the CRD schema covers
                # the rest.
                body = {k: v for k, v in document.items() if k not in ("apiVersion", "kind", "metadata")}
                for error in jsonschema.Draft7Validator(schema).iter_errors(body):
                    place = "/".join(str(p) for p in error.absolute_path)
                    failures.append(f"{path}: document {index} ({key[1]} {document['metadata'].get('name')}): {place}: {error.message}")
                checked += 1
    for failure in failures:
        print(failure)
    print(f"{checked} resources checked, {skipped} of other kinds skipped, {len(failures)} violations")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
