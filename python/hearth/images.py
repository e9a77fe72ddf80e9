"""Image names: SageMaker's built-in algorithms by name, and resource names from images.

A built-in algorithm may be named plainly ("linear-learner", "xgboost"), as Hearth spells it
("hearth/linear-learner"), or by the ECR URI the sagemaker SDK's `image_uris.retrieve` gives
("382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"). Anything else is passed on
as is: an OCI image, or the name of a bring-your-own image registered with
`hearth image register`.
"""
from __future__ import annotations

import time
from typing import Optional

# SageMaker's built-in algorithms (their ECR repository names). Hearth implements some of them;
# the server says which when a job names one it does not have.
BUILTIN_ALGORITHMS = frozenset({
    "blazingtext", "factorization-machines", "forecasting-deepar", "image-classification",
    "ipinsights", "kmeans", "knn", "lda", "linear-learner", "ntm", "object-detection",
    "object2vec", "pca", "randomcutforest", "semantic-segmentation", "seq2seq", "xgboost",
})
_ALIASES = {"sagemaker-xgboost": "xgboost"}


def builtin_algorithm(image: str) -> Optional[str]:
    """The built-in algorithm `image` names, or None."""
    name = image
    if name.startswith("hearth/"):
        name = name[len("hearth/"):]
    elif "/" in name:
        host, _, repository = name.rpartition("/")
        if ".dkr.ecr." not in host:
            return None
        name = repository
    name = name.split(":", 1)[0].split("@", 1)[0]
    name = _ALIASES.get(name, name)
    return name if name in BUILTIN_ALGORITHMS else None


def image_uri(image: str) -> str:
    """What to send as TrainingImage / Image: "hearth/<name>" for a built-in named plainly,
    anything else unchanged."""
    if "/" not in image and ":" not in image:
        algorithm = _ALIASES.get(image, image)
        if algorithm in BUILTIN_ALGORITHMS:
            return "hearth/" + algorithm
    return image


def base_name_from_image(image: str) -> str:
    """A job name base from an image: its repository name without registry or tag."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return cleaned or "job"


def timestamp(short: bool = False) -> str:
    """UTC now as the sagemaker SDK stamps names: 2024-05-01-12-30-45-123, or 240501-123045-123
    where names are short (tuning jobs: 32 characters)."""
    moment = time.time()
    millis = int((moment % 1) * 1000)
    pattern = "%y%m%d-%H%M%S" if short else "%Y-%m-%d-%H-%M-%S"
    return time.strftime(f"{pattern}-{millis:03d}", time.gmtime(moment))


_issued: set = set()


def name_from_base(base: str, max_length: int = 63, short: bool = False) -> str:
    """`base` plus a timestamp (a short one if `short`), at most `max_length` characters
    (SageMaker's name limit). Never the same name twice in one process, however fast the calls
    come."""
    while True:
        stamp = timestamp(short)
        name = f"{base[:max_length - len(stamp) - 1].rstrip('-')}-{stamp}"
        if name not in _issued:
            _issued.add(name)
            return name
        time.sleep(0.001)
