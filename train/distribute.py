"""Data-parallel training on Keras 3's ``keras.distribution`` (JAX backend), one host or several.

Nothing here is home-made parallelism: ``keras.distribution.DataParallel`` over a 1-D
``DeviceMesh`` replicates every variable and shards each batch along its first axis; XLA (GSPMD)
turns the per-step gradient and the BatchNorm batch statistics into all-reduces, so a step on N
devices computes what one device would compute on the same global batch (synchronised BatchNorm
for free). Several hosts join through ``jax.distributed.initialize`` with the usual JAX variables
(``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, or a cluster JAX detects:
SLURM, Open MPI, Kubernetes). Every process runs the same program (JAX is multi-controller, and
saving a model is a collective step too); only process 0 writes the run directory, the others write
their identical copy into a private temporary directory that is removed at the end.

:func:`make_plan` resolves and checks everything (device count, global batch, learning-rate scaling,
precision) before a single file is written; the trainer records the plan in ``config.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.errors import UsageError
from edgemri.train.config import TrainConfig

AXIS = "batch"  # keras.distribution's default data-parallel axis name
ENV_COORDINATOR, ENV_PROCESSES, ENV_PROCESS_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


@dataclass(frozen=True)
class Plan:
    """How one training process runs: its devices, batch split, learning-rate factor and precision."""

    backend: str
    devices: tuple[str, ...]
    processes: int
    process_id: int
    global_batch: int
    lr_scaling: str
    lr_scale: float
    precision: str
    loader_workers: int

    @property
    def distributed(self) -> bool:
        """True when a keras.distribution mesh is needed (more than one device, or several processes)."""
        return len(self.devices) > 1 or self.processes > 1

    @property
    def per_device_batch(self) -> int:
        return self.global_batch // len(self.devices)

    @property
    def process_batch(self) -> int:
        """Images this process feeds per step (JAX assembles the global batch from every process's part)."""
        return self.global_batch // self.processes

    @property
    def writer(self) -> bool:
        return self.process_id == 0

    def record(self) -> dict[str, Any]:
        """What config.json keeps under ``distribution`` (a resumed run may change the device count)."""
        return {"backend": self.backend, "devices": list(self.devices),
                "mesh": {"shape": [len(self.devices)], "axis_names": [AXIS]} if self.distributed else None,
                "processes": self.processes, "global_batch": self.global_batch,
                "per_device_batch": self.per_device_batch, "lr_scaling": self.lr_scaling,
                "lr_scale": self.lr_scale, "precision": self.precision, "loader_workers": self.loader_workers}

    def describe(self) -> str:
        where = f"{len(self.devices)} device(s) ({', '.join(self.devices[:4])}{', ...' if len(self.devices) > 4 else ''})"
        hosts = f" over {self.processes} processes" if self.processes > 1 else ""
        return (f"training on {where}{hosts}: global batch {self.global_batch} ({self.per_device_batch}/device), "
                f"lr x{self.lr_scale:g} ({self.lr_scaling}), {self.precision}, {self.loader_workers} loader thread(s)")


def parse_devices(value: str) -> int | None:
    """``auto`` -> None (every visible device); otherwise a positive count. One-line error else."""
    if str(value).strip().lower() == "auto":
        return None
    try:
        count = int(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--devices must be auto or a positive count, not {value!r}", "Example: --devices 2") from exc
    if count < 1:
        raise UsageError(f"--devices must be auto or a positive count, not {value!r}", "Example: --devices 2")
    return count


def init_multihost(keras: Any) -> tuple[int, int]:
    """Join the cluster named by the JAX environment (once per process) -> (processes, this process id).

    Without ``JAX_COORDINATOR_ADDRESS`` this is one process. It must run before any JAX computation;
    the trainer calls it right after importing Keras, which computes nothing.
    """
    address = os.environ.get(ENV_COORDINATOR)
    if keras.backend.backend() != "jax":
        if address:
            raise UsageError(f"{ENV_COORDINATOR} is set but the Keras backend is {keras.backend.backend()}",
                             "Several hosts need KERAS_BACKEND=jax")
        return 1, 0
    import jax

    if address and not jax.distributed.is_initialized():
        count, index = os.environ.get(ENV_PROCESSES), os.environ.get(ENV_PROCESS_ID)
        try:
            jax.distributed.initialize(coordinator_address=address, num_processes=int(count) if count else None,
                                       process_id=int(index) if index else None)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot join the JAX cluster at {address}: {str(exc)[:200]}",
                             f"Set {ENV_PROCESSES} and {ENV_PROCESS_ID} on every host (process 0 is the "
                             "coordinator)") from exc
    return jax.process_count(), jax.process_index()


#: how long a process waits at a barrier for the others (data loading on a loaded machine)
BARRIER_TIMEOUT_S = 600


def barrier(keras: Any, name: str, timeout_s: int = BARRIER_TIMEOUT_S) -> None:
    """Wait until every process of the JAX cluster gets here (a no-op for one process).

    Why: JAX's CPU collectives (gloo) give the other processes 30 s to reach the first collective,
    which is creating the model's sharded variables. Processes that load and cache their images at
    different speeds (a busy machine, slower disks) missed that by more than 30 s and failed with
    ``DEADLINE_EXCEEDED``; the coordination service's own barrier waits up to ``timeout_s``.
    """
    if keras.backend.backend() != "jax":
        return
    import jax

    if jax.process_count() <= 1:
        return
    from jax._src import distributed  # the client has no public handle; it is what jax.distributed uses

    client = distributed.global_state.client
    if client is not None:
        client.wait_at_barrier(name, timeout_in_ms=timeout_s * 1000)


def _visible_devices(keras: Any) -> list[str]:
    if keras.backend.backend() == "jax":
        return list(keras.distribution.list_devices())
    return []


def make_plan(keras: Any, cfg: TrainConfig, gpu: bool, saved: dict[str, Any] | None = None) -> Plan:
    """Resolve and check devices, batch, learning-rate scaling and precision (nothing written yet).

    ``saved`` is the config.json of a run being resumed: it keeps its global batch (so its batches
    and learning rate) whatever the new device count, unless ``global_batch`` is given.
    """
    backend = keras.backend.backend()
    processes, process_id = init_multihost(keras)
    requested = parse_devices(cfg.devices)
    devices = _choose_devices(backend, _visible_devices(keras), requested, processes, gpu)
    global_batch = cfg.global_batch or ((saved or {}).get("distribution") or {}).get("global_batch") \
        or cfg.batch_size * len(devices)
    if global_batch % len(devices):
        fit = len(devices) * max(1, round(global_batch / len(devices)))
        raise UsageError(f"a global batch of {global_batch} does not divide over {len(devices)} devices",
                         f"Use --global-batch {fit} (a multiple of {len(devices)}) or --batch-size per device")
    scale = global_batch / cfg.batch_size if cfg.lr_scaling == "linear" else 1.0
    workers = cfg.loader_workers or os.cpu_count() or 1
    return Plan(backend, tuple(devices), processes, process_id, int(global_batch), cfg.lr_scaling, float(scale),
                resolve_precision(cfg, backend, gpu), int(workers))


def _choose_devices(backend: str, visible: list[str], requested: int | None, processes: int, gpu: bool) -> list[str]:
    if backend != "jax":
        if requested not in (None, 1):
            raise UsageError(f"--devices {requested} needs the JAX backend (Keras runs on {backend})",
                             "Run with KERAS_BACKEND=jax, or use --devices 1")
        return ["gpu:0" if gpu else "cpu:0"]
    if requested is None:
        return visible
    if requested > len(visible):
        raise UsageError(f"--devices {requested} but {len(visible)} device(s) are visible ({', '.join(visible)})",
                         f"Use --devices {len(visible)} or --devices auto")
    if processes > 1 and requested != len(visible):
        raise UsageError(f"--devices {requested} with {processes} processes: every process must take part",
                         f"Use --devices auto (all {len(visible)} devices of the cluster)")
    return visible[:requested]


def resolve_precision(cfg: TrainConfig, backend: str, gpu: bool) -> str:
    """The Keras dtype policy. ``auto`` keeps the ``--mixed-precision`` rule (mixed_float16 on a GPU).

    Mixed precision on the TensorFlow CPU backend is refused: its CPU kernels emulate float16/bfloat16
    and run slower than float32. JAX on CPU is allowed (that is how the simulated devices test it).
    """
    if cfg.precision == "auto":
        return "mixed_float16" if gpu and cfg.mixed_precision in ("auto", "on") else "float32"
    if cfg.precision != "float32" and backend == "tensorflow" and not gpu:
        raise UsageError(f"--precision {cfg.precision} needs a GPU on the TensorFlow backend (none found)",
                         "Use --precision float32, or train on a GPU / with KERAS_BACKEND=jax")
    return cfg.precision


@contextlib.contextmanager
def activated(keras: Any, plan: Plan) -> Iterator[None]:
    """keras.distribution.DataParallel over the plan's mesh while training; the previous one after."""
    if not plan.distributed:
        yield
        return
    dist = keras.distribution
    mesh = dist.DeviceMesh(shape=(len(plan.devices),), axis_names=[AXIS], devices=list(plan.devices))
    # auto_shard_dataset=False: each process's PyDataset already yields its own slice of the global batch.
    with dist.DataParallel(device_mesh=mesh, auto_shard_dataset=False).scope():
        yield


@contextlib.contextmanager
def process_config(cfg: TrainConfig, plan: Plan, resume: bool) -> Iterator[TrainConfig]:
    """Process 0: ``cfg`` itself. Other processes: the same run in a private scratch directory.

    A follower starting a new run refuses an existing --out just as process 0 does (instead of
    computing alone and hanging); resuming, it copies the run's config, split and checkpoint.
    """
    if plan.writer:
        yield cfg
        return
    out = Path(cfg.out)
    if not resume and out.exists() and any(out.iterdir()) and not cfg.overwrite:
        from edgemri.rundir import RunDir

        RunDir.create(out, overwrite=False)  # raises the same one-line error as process 0
    scratch = Path(tempfile.mkdtemp(prefix=f"edgemri-process{plan.process_id}-"))
    try:
        local = scratch / out.name
        local.mkdir()
        if resume:
            for name in ("config.json", "split.json"):
                shutil.copy2(out / name, local / name)
            shutil.copytree(out / "checkpoint", local / "checkpoint")
        yield dataclasses.replace(cfg, out=str(local), overwrite=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def process_log(log: Callable[[str], None], plan: Plan) -> Callable[[str], None]:
    """Process 0 logs as usual; the others prefix their lines, so merged cluster logs stay readable."""
    if plan.writer:
        return log
    return lambda message: log(f"[process {plan.process_id}] {message}")
