"""NGC releases of Triton: which exist, which serves what, their images and their Python.

Release facts:
- Triton's TensorFlow backend (targets savedmodel, tftrt) ships up to release 25.02.
- A TensorRT plan loads only under the TensorRT version that built it: plans not built locally are
  built at deployment in `nvcr.io/nvidia/tensorrt:<tag>-py3`, the same release as the server.
- TF-TRT SavedModels not converted locally are converted at deployment in NVIDIA's TensorFlow
  container of the same release (`nvcr.io/nvidia/tensorflow:<tag>-tf2-py3`, which ships TF-TRT and the
  TensorRT of that release), whose last release is 25.02 like the TensorFlow backend's.
- The container's Python is 3.12 from 24.12 (Ubuntu 24.04), 3.10 before (Ubuntu 22.04).
- The container's CUDA is 13 from 25.08 (its release notes: "Release 25.08 is based on CUDA 13.0"), 12 before.
"""

from __future__ import annotations

#: NGC releases of Triton known to this version of repo-builder, newest last. Source: NVIDIA's Triton
#: release notes index (docs.nvidia.com/deeplearning/triton-inference-server/release-notes), which
#: lists 25.11 as the newest release (there is no 25.07). A spec may pin a newer tag; this table only
#: picks the default.
KNOWN_RELEASES: tuple[str, ...] = (
    "24.10",
    "24.11",
    "24.12",
    "25.01",
    "25.02",
    "25.03",
    "25.04",
    "25.05",
    "25.06",
    "25.08",
    "25.09",
    "25.10",
    "25.11",
)
NEWEST_KNOWN_RELEASE = KNOWN_RELEASES[-1]

#: The last NGC release of Triton that ships the TensorFlow backend.
LAST_TENSORFLOW_BACKEND_RELEASE = "25.02"

#: The last NGC release of NVIDIA's TensorFlow container (nvcr.io/nvidia/tensorflow:<tag>-tf2-py3). The
#: newest tag public Dockerfiles pull is 25.02-tf2-py3 (TensorFlow 2.17); NVIDIA stopped the TensorFlow
#: containers with the release that ended the TensorFlow backend. Not checked against NGC's own tag list
#: from here (no network): the tftrt target is bounded by LAST_TENSORFLOW_BACKEND_RELEASE anyway.
LAST_TENSORFLOW_CONTAINER_RELEASE = "25.02"

TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:{tag}-py3"
TENSORRT_IMAGE = "nvcr.io/nvidia/tensorrt:{tag}-py3"
TENSORFLOW_IMAGE = "nvcr.io/nvidia/tensorflow:{tag}-tf2-py3"

#: Pins of what python-target models import, by the container's Python. Same versions as the
#: `convert` extra in pyproject.toml (a unit test keeps them in step) except where a wheel for that
#: Python does not exist: onnxruntime 1.31 has no wheel for Python 3.10, 1.23.2 is the newest that has.
RUNTIME_PINS: dict[str, dict[str, str]] = {
    "3.12": {"numpy": "1.26.4", "onnxruntime": "1.31.1", "tensorflow": "2.21.0"},
    "3.10": {"numpy": "1.26.4", "onnxruntime": "1.23.2", "tensorflow": "2.21.0"},
}


#: onnxruntime-gpu for python-target models on GPU instances, by (the container's Python, its CUDA major).
#: PyPI's onnxruntime-gpu is a CUDA 12 build up to 1.26 and a CUDA 13 build from 1.27 (the nvidia-* pins of
#: its `cuda` extra); 1.23.2 is the newest with a Python 3.10 wheel. 1.31.1 was seen computing with its CUDA
#: provider on an H200 with CUDA 13.
GPU_ONNXRUNTIME: dict[tuple[str, int], str] = {("3.12", 13): "1.31.1", ("3.12", 12): "1.26.0", ("3.10", 12): "1.23.2"}


def release(tag: str) -> tuple[int, int]:
    """A `yy.mm` tag as a comparable (yy, mm)."""
    yy, mm = tag.split(".")
    return int(yy), int(mm)


def has_tensorflow_backend(tag: str) -> bool:
    """Whether release `tag` ships Triton's TensorFlow backend (targets savedmodel, tftrt)."""
    return release(tag) <= release(LAST_TENSORFLOW_BACKEND_RELEASE)


def has_tensorflow_container(tag: str) -> bool:
    """Whether NVIDIA published its TensorFlow container (TF-TRT included) for release `tag`."""
    return release(tag) <= release(LAST_TENSORFLOW_CONTAINER_RELEASE)


def tensorflow_image(tag: str) -> str:
    """NVIDIA's TensorFlow container of release `tag`, where TF-TRT recipes run at deployment.

    Raises ValueError for a release without one (the spec's release guard refuses tftrt models there first).
    """
    if not has_tensorflow_container(tag):
        raise ValueError(
            f"release {tag} has no NVIDIA TensorFlow container: the last is {LAST_TENSORFLOW_CONTAINER_RELEASE}"
        )
    return TENSORFLOW_IMAGE.format(tag=tag)


def default_release(tensorflow_backend: bool) -> str:
    """The release to deploy when the spec pins none: the newest that serves every model."""
    return LAST_TENSORFLOW_BACKEND_RELEASE if tensorflow_backend else NEWEST_KNOWN_RELEASE


def container_python(tag: str) -> str:
    """Python of the Triton container: Ubuntu 24.04 and Python 3.12 from 24.12, Ubuntu 22.04 (3.10) before."""
    return "3.12" if release(tag) >= release("24.12") else "3.10"


def cuda_major(tag: str) -> int:
    """The CUDA major version of release `tag`'s containers."""
    return 13 if release(tag) >= release("25.08") else 12
