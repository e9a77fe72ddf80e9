#!/usr/bin/env python3
"""Trims botocore's service models down to what Hearth serves.

Hearth validates requests and shapes responses from botocore's own service model rather than
from hand-written checks (src/api/service_model.h). The full SageMaker model is ~400 operations
and several MB; Hearth embeds only the operations it serves (now and soon) and the shapes
reachable from their inputs, outputs and modelled errors, with documentation and other
client-only keys dropped. Key order is kept as botocore has it: member order is the order in
which validation errors are reported.

Usage: scripts/trim-botocore-model.py [--botocore-data DIR] [--out-dir DIR]
Re-run it when botocore is upgraded, and commit the output (src/api/model/*.json).
"""

import argparse
import gzip
import json
import os
import sys

SAGEMAKER_OPERATIONS = [
    # Training jobs
    "CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob",
    # Models
    "CreateModel", "DescribeModel", "DeleteModel", "ListModels",
    # Endpoint configs
    "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig",
    "ListEndpointConfigs",
    # Endpoints
    "CreateEndpoint", "DescribeEndpoint", "DeleteEndpoint", "ListEndpoints", "UpdateEndpoint",
    # Batch transform
    "CreateTransformJob", "DescribeTransformJob", "ListTransformJobs", "StopTransformJob",
    # Hyperparameter tuning
    "CreateHyperParameterTuningJob", "DescribeHyperParameterTuningJob",
    "ListHyperParameterTuningJobs", "StopHyperParameterTuningJob",
    "ListTrainingJobsForHyperParameterTuningJob",
    # Tags
    "AddTags", "ListTags", "DeleteTags",
    # Notebook instances
    "CreateNotebookInstance", "DescribeNotebookInstance", "ListNotebookInstances",
    "StartNotebookInstance", "StopNotebookInstance", "DeleteNotebookInstance",
    "CreatePresignedNotebookInstanceUrl",
]

LOGS_OPERATIONS = ["DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents"]

MODELS = [
    # (botocore service dir, api version, operations, output file)
    ("sagemaker", "2017-07-24", SAGEMAKER_OPERATIONS, "sagemaker-2017-07-24.json"),
    ("logs", "2014-03-28", LOGS_OPERATIONS, "logs-2014-03-28.json"),
]

# What validation and (de)serialization read; everything else (documentation, examples, box,
# deprecation notes, endpoint rules) is for client generators.
SHAPE_KEYS = ["type", "required", "members", "member", "key", "value", "min", "max", "pattern",
              "enum", "sensitive", "union", "timestampFormat", "exception", "error"]
MEMBER_KEYS = ["shape", "jsonvalue", "idempotencyToken", "timestampFormat", "locationName"]
REF_KEYS = ["shape"]  # list member / map key / map value references
OPERATION_KEYS = ["name", "http", "input", "output", "errors"]
METADATA_KEYS = ["apiVersion", "endpointPrefix", "jsonVersion", "protocol", "serviceFullName",
                 "serviceId", "signatureVersion", "signingName", "targetPrefix", "uid"]


def default_botocore_data():
    try:
        import botocore  # noqa: PLC0415 -- only needed to find the data directory
    except ImportError:
        return None
    return os.path.join(os.path.dirname(botocore.__file__), "data")


def botocore_version():
    try:
        import botocore  # noqa: PLC0415
        return botocore.__version__
    except ImportError:
        return "unknown"


def load_model(data_dir, service, version):
    base = os.path.join(data_dir, service, version, "service-2.json")
    if os.path.exists(base + ".gz"):
        with gzip.open(base + ".gz", "rt", encoding="utf-8") as f:
            return json.load(f)
    with open(base, encoding="utf-8") as f:
        return json.load(f)


def pick(d, keys):
    return {k: d[k] for k in keys if k in d}


def referenced_shapes(shape):
    """Names of the shapes `shape` refers to directly."""
    out = []
    for member in shape.get("members", {}).values():
        out.append(member["shape"])
    for ref in ("member", "key", "value"):
        if ref in shape:
            out.append(shape[ref]["shape"])
    return out


def trim(model, operations):
    all_shapes = model["shapes"]
    ops = {}
    roots = []
    for name in operations:
        if name not in model["operations"]:
            raise SystemExit(f"operation {name} is not in the botocore model")
        op = pick(model["operations"][name], OPERATION_KEYS)
        if "errors" in op:
            op["errors"] = [pick(e, REF_KEYS) for e in op["errors"]]
        ops[name] = op
        for ref in ("input", "output"):
            if ref in op:
                op[ref] = pick(op[ref], REF_KEYS)
                roots.append(op[ref]["shape"])
        roots.extend(e["shape"] for e in op.get("errors", []))

    # Walk the reachable graph, then emit in botocore's own order so diffs stay readable.
    reachable = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in reachable:
            continue
        reachable.add(name)
        stack.extend(referenced_shapes(all_shapes[name]))

    shapes = {}
    for name, shape in all_shapes.items():
        if name not in reachable:
            continue
        out = pick(shape, SHAPE_KEYS)
        if "members" in out:
            out["members"] = {m: pick(v, MEMBER_KEYS) for m, v in out["members"].items()}
        for ref in ("member", "key", "value"):
            if ref in out:
                out[ref] = pick(out[ref], REF_KEYS)
        shapes[name] = out

    return {
        "version": model.get("version", "2.0"),
        "metadata": pick(model["metadata"], METADATA_KEYS),
        "operations": ops,
        "shapes": shapes,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--botocore-data", default=default_botocore_data(),
                        help="botocore's data directory (default: the importable botocore's)")
    parser.add_argument("--out-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src", "api", "model"))
    args = parser.parse_args()
    if not args.botocore_data:
        sys.exit("botocore is not importable; pass --botocore-data")

    os.makedirs(args.out_dir, exist_ok=True)
    for service, version, operations, filename in MODELS:
        trimmed = trim(load_model(args.botocore_data, service, version), operations)
        path = os.path.join(args.out_dir, filename)
        with open(path, "w", encoding="utf-8") as f:
            # One level of indentation keeps the file diffable without doubling its size.
            json.dump(trimmed, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"{path}: {len(trimmed['operations'])} operations, "
              f"{len(trimmed['shapes'])} shapes (botocore {botocore_version()})")


if __name__ == "__main__":
    main()
