"""What the performance probe sends and how it checks an answer: a request encoded once, as tritonclient
would encode it (HTTP/1.1 with Triton's binary tensor extension, or a serialized gRPC ModelInferRequest), sent
as the same bytes again and again by the load generator (validate/load.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from repo_builder.validate.report import error_text

if TYPE_CHECKING:
    import numpy as np

Protocol = Literal["http", "grpc"]


@dataclass(frozen=True)
class Target:
    """What to send where: `payload` is a whole HTTP/1.1 request (request line, headers and body) or a
    serialized gRPC ModelInferRequest."""

    protocol: Protocol
    address: str  # host:port
    payload: bytes
    timeout: float


def http_request(
    address: str,
    model: str,
    inputs: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
    outputs: Sequence[str],
    version: int | str = "",
) -> bytes:
    """The whole HTTP/1.1 request tritonclient would send for these inputs (binary tensor data)."""
    import tritonclient.http as httpclient

    items = []
    for name, value in inputs.items():
        item = httpclient.InferInput(name, list(value.shape), datatypes[name])
        item.set_data_from_numpy(value)  # binary_data=True, as Connection.infer sends it
        items.append(item)
    requested = [httpclient.InferRequestedOutput(o) for o in outputs]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(items, outputs=requested)
    path = f"/v2/models/{model}" + (f"/versions/{version}" if str(version) else "") + "/infer"
    head = [f"POST {path} HTTP/1.1", f"Host: {address}", "Connection: keep-alive"]
    if json_size is None:
        head.append("Content-Type: application/json")
    else:
        head += ["Content-Type: application/octet-stream", f"Inference-Header-Content-Length: {json_size}"]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def grpc_request(
    model: str,
    inputs: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
    outputs: Sequence[str],
    version: int | str = "",
) -> bytes:
    """A serialized ModelInferRequest with the inputs as raw contents, as tritonclient builds it."""
    import numpy as np
    from tritonclient.grpc import service_pb2
    from tritonclient.utils import serialize_byte_tensor

    request = service_pb2.ModelInferRequest(model_name=model, model_version=str(version))
    for name, value in inputs.items():
        request.inputs.add(name=name, datatype=datatypes[name], shape=list(value.shape))
        if datatypes[name] == "BYTES":
            raw = serialize_byte_tensor(value)
            request.raw_input_contents.append(raw.item() if raw.size else b"")
        else:
            request.raw_input_contents.append(np.ascontiguousarray(value).tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return bytes(request.SerializeToString())


def check_sample(protocol: Protocol, sample: bytes, outputs: Sequence[str]) -> str | None:
    """None when `sample` (one successful response) is an inference response holding every requested
    output, else what is wrong with it."""
    try:
        if protocol == "grpc":
            from tritonclient.grpc import service_pb2

            got = [o.name for o in service_pb2.ModelInferResponse.FromString(sample).outputs]
        else:
            head, _, body = sample.partition(b"\r\n\r\n")
            size = None
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"inference-header-content-length":
                    size = int(value)
            header = json.loads(body[:size] if size is not None else body)
            got = [o["name"] for o in header.get("outputs", [])]
    except Exception as e:
        return f"the response does not parse as an inference response: {error_text(e)}"
    missing = [o for o in outputs if o not in got]
    if missing:
        return f"the response lacks output(s) {', '.join(missing)} (has {', '.join(got) or 'none'})"
    return None
