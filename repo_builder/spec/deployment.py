"""The deployment's rules: the spec's `triton:` block, checked against the whole spec.

Each rule of `DEPLOYMENT_RULES` returns one located problem or None: the pinned release serves every model,
the bind address is an IP address, the admin key's variable is an environment variable name. `Spec` runs
them all and reports them together; deploy/compose.py then writes the deployment. The models are seen
here only for typing: spec/models.py imports this module, not the other way round.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from repo_builder.spec.problems import Loc
from repo_builder.triton import releases
from repo_builder.triton.platforms import PLATFORMS

if TYPE_CHECKING:
    from repo_builder.spec.models import Spec


def release_serves_every_model(spec: Spec) -> tuple[Loc, str] | None:
    """A pinned `triton.image_tag` after the TensorFlow backend's last release serves no savedmodel/tftrt model."""
    pinned = spec.triton.image_tag
    tf_models = [m for m in spec.models if PLATFORMS[m.target].tensorflow_backend]
    if pinned is None or not tf_models or releases.has_tensorflow_backend(pinned):
        return None
    last = releases.LAST_TENSORFLOW_BACKEND_RELEASE
    listed = "\n".join(f"  - {m.name} (target {m.target})" for m in tf_models)
    return ("triton", "image_tag"), (
        f"release {pinned} cannot serve {len(tf_models)} model{'s' if len(tf_models) != 1 else ''} "
        "of this spec: Triton's TensorFlow backend (targets savedmodel, tftrt) ends with release "
        f"{last}.\n"
        f"{listed}\n"
        "  Either change their target to onnx, tensorrt or python (python runs the SavedModel with "
        "TensorFlow in Triton's python backend),\n"
        f"  or set triton.image_tag to {last} or earlier (without image_tag the default is {last} "
        "for this spec)."
    )


def bind_address_is_an_ip(spec: Spec) -> tuple[Loc, str] | None:
    bind = spec.triton.bind_address
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        return ("triton", "bind_address"), (
            f"{bind!r} is not an IP address; use 127.0.0.1 (this host only, the default), "
            "0.0.0.0 (every interface) or one of this host's addresses"
        )
    return None


def key_env_is_a_variable_name(spec: Spec) -> tuple[Loc, str] | None:
    """`triton.restricted_api_key_env` is a shell variable name (compose reads the key from it)."""
    name = spec.triton.restricted_api_key_env
    if name and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name):
        return None
    return ("triton", "restricted_api_key_env"), (
        f"{name!r} is not an environment variable name; use letters, digits and _, e.g. TRITON_ADMIN_KEY"
    )


DEPLOYMENT_RULES = (release_serves_every_model, bind_address_is_an_ip, key_env_is_a_variable_name)
