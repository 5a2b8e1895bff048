"""One interface over tritonclient's HTTP and gRPC clients; every call has a timeout.

The health calls (live, ready) have a short one of their own (HEALTH_TIMEOUT at most): a server that
answers them answers in milliseconds, and a stopped or hung server is told apart from a slow model fast.
Over HTTP they read the status code themselves, so that a server answering HTTP 500 is reported as that
(ServerError), not as "not live".
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from repo_builder.deps import require

if TYPE_CHECKING:
    import numpy as np
    from tritonclient.grpc.model_config_pb2 import ModelConfig

Protocol = Literal["http", "grpc"]
PROTOCOLS: tuple[str, ...] = ("http", "grpc")
#: seconds a health call (live, ready) may take at most
HEALTH_TIMEOUT = 3.0


class ServerError(Exception):
    """The server answered a health call with an error of its own (HTTP 5xx, an unexpected status)."""


def strip_scheme(url: str) -> str:
    for scheme in ("http://", "https://", "grpc://"):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/")
    return url.rstrip("/")


def dtype_name(value: int) -> str:
    """The name of a config's DataType value: 1 -> TYPE_BOOL."""
    from tritonclient.grpc.model_config_pb2 import DataType

    return str(DataType.Name(value))


def triton_datatype(config_type: str) -> str:
    """TYPE_FP32 -> FP32, TYPE_STRING -> BYTES (the protocol's name)."""
    short = config_type.removeprefix("TYPE_")
    return "BYTES" if short == "STRING" else short


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


class Connection:
    """A tritonclient client for one protocol; results come back as plain dicts and numpy arrays."""

    def __init__(self, url: str, protocol: Protocol = "http", timeout: float = 10.0) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        self.url = strip_scheme(url)
        self.protocol = protocol
        self.timeout = timeout
        self.health_timeout = min(timeout, HEALTH_TIMEOUT)
        if protocol == "http":
            self._module = require("tritonclient.http")
            self._client = self._module.InferenceServerClient(
                self.url, connection_timeout=timeout, network_timeout=timeout
            )
        else:
            self._module = require("tritonclient.grpc")
            self._client = self._module.InferenceServerClient(self.url)

    def _kw(self, **kwargs: Any) -> dict[str, Any]:
        if self.protocol == "grpc":
            kwargs["client_timeout"] = self.timeout
        return kwargs

    def _json(self, **kwargs: Any) -> dict[str, Any]:
        return self._kw(as_json=True, **kwargs) if self.protocol == "grpc" else kwargs

    def close(self) -> None:
        # closing a client that never connected must not hide the real result
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health and repository ------------------------------------------------------------
    def _http_health(self, what: str) -> bool:
        """GET /v2/health/<what>: True on 200, False on 400 (Triton's "not live/ready"), ServerError on
        anything else; OSError (refused, timed out) when there is no answer."""
        import http.client

        connection = http.client.HTTPConnection(self.url, timeout=self.health_timeout)
        try:
            connection.request("GET", f"/v2/health/{what}")
            response = connection.getresponse()
            body = response.read(300).decode(errors="replace").strip()
        except http.client.HTTPException as e:
            raise ServerError(f"not an HTTP answer from /v2/health/{what}: {type(e).__name__}: {e}") from e
        finally:
            connection.close()
        if response.status in (200, 400):
            return response.status == 200
        raise ServerError(
            f"HTTP {response.status} {response.reason} from /v2/health/{what}" + (f": {body}" if body else "")
        )

    def live(self) -> bool:
        if self.protocol == "http":
            return self._http_health("live")
        return bool(self._client.is_server_live(client_timeout=self.health_timeout))

    def ready(self) -> bool:
        if self.protocol == "http":
            return self._http_health("ready")
        return bool(self._client.is_server_ready(client_timeout=self.health_timeout))

    def answers(self) -> str | None:
        """None when the server answers a liveness call now (live or not), else why not."""
        try:
            self.live()
        except ServerError as e:
            return str(e)
        except Exception as e:
            text = str(e).strip() or type(e).__name__
            if "timed out" in text.lower() or "deadline" in text.lower() or isinstance(e, TimeoutError):
                return f"no answer to a health check within {self.health_timeout:g} s"
            return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"
        return None

    def model_ready(self, name: str, version: int | str = "") -> bool:
        return bool(self._client.is_model_ready(name, str(version), **self._kw()))

    def index(self) -> list[dict[str, Any]]:
        result = self._client.get_model_repository_index(**self._json())
        entries = result if isinstance(result, list) else result.get("models", [])
        return [dict(e) for e in entries]

    # -- models -------------------------------------------------------------------------
    def metadata(self, name: str, version: int | str = "") -> dict[str, Any]:
        meta = dict(self._client.get_model_metadata(name, str(version), **self._json()))
        for key in ("inputs", "outputs"):
            meta[key] = [
                {"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t.get("shape", [])]}
                for t in meta.get(key, [])
            ]
        return meta

    def config(self, name: str, version: int | str = "") -> ModelConfig:
        from google.protobuf import json_format
        from tritonclient.grpc.model_config_pb2 import ModelConfig

        if self.protocol == "grpc":
            response = self._client.get_model_config(name, str(version), **self._kw())
            config = ModelConfig()
            config.CopyFrom(response.config)
            return config
        served = self._client.get_model_config(name, str(version))
        return json_format.ParseDict(served, ModelConfig(), ignore_unknown_fields=True)

    def statistics(self, name: str, version: int | str = "") -> dict[str, int]:
        """inference_count and execution_count summed over the model's versions."""
        stats = self._client.get_inference_statistics(name, str(version), **self._json())
        totals = {"inference_count": 0, "execution_count": 0}
        for entry in stats.get("model_stats", []):
            for key in totals:
                totals[key] += _int(entry.get(key))
        return totals

    def infer(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        datatypes: Mapping[str, str],
        outputs: Sequence[str],
        version: int | str = "",
    ) -> dict[str, np.ndarray]:
        infer_inputs = []
        for tensor, value in inputs.items():
            item = self._module.InferInput(tensor, list(value.shape), datatypes[tensor])
            item.set_data_from_numpy(value)
            infer_inputs.append(item)
        requested = [self._module.InferRequestedOutput(o) for o in outputs]
        result = self._client.infer(name, infer_inputs, str(version), outputs=requested, **self._kw())
        return {o: result.as_numpy(o) for o in outputs}
