"""How many GPUs the embedded server will see (the driver's count, narrowed as CUDA narrows it)."""

from __future__ import annotations

from repo_builder.serve.gpus import visible_gpus


def test_cuda_visible_devices_narrows_the_driver_count() -> None:
    assert visible_gpus({}, driver_gpus=2) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, driver_gpus=2) == 1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, driver_gpus=2) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, driver_gpus=2) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, driver_gpus=2) == 1  # CUDA stops at -1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, driver_gpus=1) == 1
