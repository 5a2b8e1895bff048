"""The build's worker processes (build/pool.py) with the real TensorFlow: a per-model time limit, Ctrl-C
during a hung factory, nothing left behind by kill -9, and each model built as if alone (the same bytes
whatever order and -j)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.examples import EXAMPLES, PYTHON, ROOT

pytestmark = pytest.mark.tensorflow

FACTORIES = """
import time
import keras

def good():
    keras.utils.set_random_seed(1)
    x = keras.Input((4,), name='x')
    return keras.Model(x, keras.layers.Dense(2, name='y')(x))

def hang():
    time.sleep(1e6)

def crash():
    import os, signal
    os.kill(os.getpid(), signal.SIGSEGV)
"""


def _spec(folder: Path, models: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.py").write_text(FACTORIES)
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump({"repository": "repo", "models": models}, sort_keys=False))
    return path


def _cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "repo_builder", *args]


def _env(mark: str) -> dict[str, str]:
    """The environment of a build under test: `mark` in it, which every process it starts inherits."""
    return dict(os.environ, PYTHONPATH=str(ROOT), RB_TEST_MARK=mark)


def _marked(mark: str) -> list[int]:
    """The live processes (zombies excluded) whose environment holds RB_TEST_MARK=`mark`."""
    needle = f"RB_TEST_MARK={mark}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if needle in proc.joinpath("environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return found


def _wait_gone(mark: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _kill_marked(mark: str) -> None:
    for pid in _marked(mark):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _semaphores() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("sem.")}


def test_a_hung_factory_fails_after_the_time_limit_and_the_others_build(tmp_path: Path) -> None:
    """One worker (-j 1): the hung model's process is killed at the limit, the one that crashes its
    process fails with the signal, and the last model still builds."""
    spec = _spec(
        tmp_path,
        [
            {"name": "stuck", "source": {"python": "models.py:hang"}, "target": "onnx"},
            {"name": "crashing", "source": {"python": "models.py:crash"}, "target": "onnx"},
            {"name": "fine", "source": {"python": "models.py:good"}, "target": "onnx"},
        ],
    )
    mark = uuid.uuid4().hex
    started = time.monotonic()
    try:
        done = subprocess.run(
            _cli("build", str(spec), "--model-timeout", "10", "-j", "1"),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=_env(mark),
        )
    finally:
        _kill_marked(mark)
    seconds = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    message = (
        "stuck failed: did not finish within the build's time limit of 10 s (at step 'load', source python "
        "models.py:hang); its process was stopped. If the model needs longer, raise the limit: repo-builder "
        "build --model-timeout SECONDS (0: no limit)"
    )
    assert message in " ".join(done.stderr.split()), done.stderr
    assert "crashing failed: the model's process was killed by SIGSEGV" in done.stderr
    assert "Traceback" not in done.stderr
    repo = tmp_path / "repo"
    assert (repo / "fine" / "1" / "model.onnx").is_file()  # the next model built in a fresh process
    assert not (repo / "stuck").exists()  # a failed model leaves only its log, beside the model folders
    assert "did not finish within the build's time limit" in (repo / "stuck.build.log").read_text()
    assert seconds < 240
    assert _marked(mark) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_ends_a_build_waiting_on_a_hung_factory(tmp_path: Path, sig: signal.Signals) -> None:
    """No time limit applies (the default is an hour): Ctrl-C and SIGTERM end the build at once (130)."""
    spec = _spec(tmp_path, [{"name": "stuck", "source": {"python": "models.py:hang"}, "target": "onnx"}])
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(
        _cli("build", str(spec)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(mark),
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            logs = list(tmp_path.glob(".repo.staging-*/stuck/build.log"))
            if logs and "step: load" in logs[0].read_text(errors="replace"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the factory never started")
        time.sleep(1)  # inside time.sleep(1e6)
        asked = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        assert time.monotonic() - asked < 10
    finally:
        proc.kill()
        _kill_marked(mark)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _wait_gone(mark, 5) == []
    assert not list(tmp_path.glob(".repo.staging-*"))


@pytest.mark.parametrize("delay", [0.05, 0.5, 3.0])
def test_kill_9_while_workers_start_leaves_no_process_and_no_semaphore(tmp_path: Path, delay: float) -> None:
    """kill -9 of the build `delay` s after its first worker process appears: within a few seconds nothing
    it started is alive (workers held ~750 MB each) and /dev/shm has no new semaphore."""
    spec = _spec(
        tmp_path,
        [{"name": f"m{i}", "source": {"python": "models.py:good"}, "target": "onnx"} for i in range(3)],
    )
    mark = uuid.uuid4().hex
    before = _semaphores()
    proc = subprocess.Popen(
        _cli("build", str(spec), "-j", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=_env(mark),
    )
    try:
        deadline = time.monotonic() + 60
        while not [p for p in _marked(mark) if p != proc.pid] and time.monotonic() < deadline:
            assert proc.poll() is None, "the build ended before its workers started"
            time.sleep(0.005)
        assert [p for p in _marked(mark) if p != proc.pid], "no worker process started"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        left = _wait_gone(mark, 5)
        assert left == [], "processes outlived the killed build: " + ", ".join(
            Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
            for p in left
            if Path(f"/proc/{p}").exists()
        )
    finally:
        proc.kill()
        _kill_marked(mark)
    assert _semaphores() - before == set()


def _artifacts(repo: Path) -> dict[str, str]:
    """sha256 of every file of every model folder, but build.log (timestamps) and TensorFlow's
    fingerprint.pb (TensorFlow stamps each SavedModel it writes with a fresh one)."""
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and p.parent != repo and p.name not in ("build.log", "fingerprint.pb")
    }


def test_each_model_builds_as_if_alone_whatever_the_order_and_jobs(tmp_path: Path) -> None:
    """Models that create same-named Keras layers and go through tf2onnx and a SavedModel export: the same
    bytes built in spec order with -j 1 and in reverse order with -j 2 (a reused process leaks Keras' and
    tf2onnx's name counters and TensorFlow's function ids from one model to the next)."""
    models = [
        {"name": "tabular_mlp", "source": {"python": "models.py:build_mlp"}, "target": "onnx"},
        {"name": "image_cnn_savedmodel", "source": {"python": "models.py:build_cnn"}, "target": "savedmodel"},
        {"name": "image_cnn", "source": {"python": "models.py:build_cnn"}, "target": "onnx"},
        {"name": "normalizer", "source": {"python": "models.py:build_normalizer"}, "target": "python"},
    ]
    digests = []
    for name, order, jobs in (("forward", models, "1"), ("reverse", models[::-1], "2")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy2(EXAMPLES / "models.py", folder / "models.py")
        spec = folder / "models.yaml"
        spec.write_text(yaml.safe_dump({"repository": "repo", "models": order}, sort_keys=False))
        done = subprocess.run(
            _cli("build", str(spec), "-j", jobs),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=folder,
            env=_env(uuid.uuid4().hex),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        digests.append(_artifacts(folder / "repo"))
    forward, reverse = digests
    assert any(k.endswith("model.onnx") for k in forward) and any(k.endswith("saved_model.pb") for k in forward)
    differ = sorted(k for k in forward.keys() | reverse.keys() if forward.get(k) != reverse.get(k))
    assert differ == []
