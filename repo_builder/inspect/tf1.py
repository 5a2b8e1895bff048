"""TensorFlow 1 SavedModels (tf.compat.v1.saved_model.Builder: TF Serving's half_plus_two and counter).

They have no object graph: their variables are restored by the graph's own ops, and a signature may return a
variable itself (DT_FLOAT_REF). They run in a v1 Session, as TF Serving and Triton's TensorFlow backend run
them; the build serves and converts the folder as it is (a TF2 function around it loses the variables'
initialisation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repo_builder import deps
from repo_builder.inspect.tensors import Loaded, Tensor


def is_tf1_saved_model(path: Path) -> bool:
    """A SavedModel written by TensorFlow 1 (tf.compat.v1.saved_model.Builder, TF Serving's test models): no
    object graph, variables restored by the graph's own ops. Re-exporting it through a TF2 function loses the
    variables' initialisation, so the build serves and converts the folder as it is."""
    parse_saved_model = deps.require("tensorflow.python.saved_model.loader_impl").parse_saved_model
    saved = parse_saved_model(str(path))
    return not any(len(mg.object_graph_def.nodes) for mg in saved.meta_graphs)


def tf1_tags(path: Path, signature: str) -> list[str]:
    """The tags of the SavedModel's meta graph that has the signature."""
    parse_saved_model = deps.require("tensorflow.python.saved_model.loader_impl").parse_saved_model
    return next(
        list(mg.meta_info_def.tags) for mg in parse_saved_model(str(path)).meta_graphs if signature in mg.signature_def
    )


def load_tf1(path: Path, signature: str, inputs: list[Tensor], outputs: list[Tensor]) -> Loaded:
    """A TF1 SavedModel run the way TF Serving and Triton's TensorFlow backend run it: a v1 Session."""
    import numpy as np

    tf = deps.require("tensorflow")
    v1 = tf.compat.v1
    tags = tf1_tags(path, signature)
    graph = tf.Graph()
    session = v1.Session(graph=graph)
    with graph.as_default():
        meta = v1.saved_model.loader.load(session, tags, str(path))
    sd = meta.signature_def[signature]
    feeds = {k: v.name for k, v in sd.inputs.items()}
    fetches = {k: v.name for k, v in sd.outputs.items()}

    def call(feed: dict[str, Any]) -> dict[str, Any]:
        return dict(session.run(fetches, {feeds[k]: np.asarray(v) for k, v in feed.items()}))

    loaded = Loaded("saved_model_v1", inputs, outputs, call, trackable=session, fetches=sorted(fetches.values()))
    loaded.notes.append(f"TF1 SavedModel (tags {', '.join(tags)}): served and converted as it is, not re-exported")
    return loaded
