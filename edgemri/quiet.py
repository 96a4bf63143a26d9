"""Keep framework start-up chatter off the user's terminal unless ``--debug``.

Why: on a CPU machine every TensorFlow command used to open with oneDNN, ``cudart_stub`` and
``failed call to cuInit ... (303)`` lines. They are not errors and they bury the one line that
matters. Two mechanisms, because TensorFlow 2.16+ logs through absl before it reads its own
settings:

* environment (``TF_CPP_MIN_LOG_LEVEL=2``, ``GRPC_VERBOSITY=ERROR``): set with ``setdefault`` (a
  user's own value wins) in the CLI root callback, so every child process (QAT worker, bench
  worker, demo stage) inherits it; it silences C++ INFO/WARNING logged once TensorFlow is up;
* an import hook for ``tensorflow``: while the package initializes (and probes its devices, where
  ``cuInit`` complains) file descriptor 2 goes to a temporary file; afterwards every line that is
  not known framework noise (Python warnings, real errors) is written back to stderr.

Python warnings and Python logging are left alone. ``--debug`` (or ``EDGEMRI_DEBUG=1``) turns all
of this off and is exported as ``EDGEMRI_DEBUG=1`` so that child processes see it too.
Standard library only: the runtime on a Raspberry Pi imports this module.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, MutableMapping
from typing import Any

DEBUG_VAR = "EDGEMRI_DEBUG"
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}
MANAGED_VARS = (DEBUG_VAR, *QUIET_ENV)
QUIET_IMPORTS = ("tensorflow",)

NOISE_PATTERNS = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\]",  # absl INFO / WARNING line
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] ",  # pre-absl TensorFlow INFO / WARNING line
    r"failed call to cuInit",  # CUDA libraries present, no driver: an ERROR line on every CPU box
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"^To enable the following instructions: ",  # second line of cpu_feature_guard's INFO
    r"^Could not find cuda drivers on your machine",
)
NOISE = re.compile("|".join(NOISE_PATTERNS))


def debug_requested(env: MutableMapping[str, str] | None = None) -> bool:
    """True when ``EDGEMRI_DEBUG`` is set to anything but empty/0 (set by ``--debug`` too)."""
    value = (os.environ if env is None else env).get(DEBUG_VAR, "")
    return value not in ("", "0")


def quiet_env(env: MutableMapping[str, str], debug: bool) -> MutableMapping[str, str]:
    """Put the quiet settings (or the debug flag) into ``env``; returns ``env``."""
    if debug:
        env[DEBUG_VAR] = "1"
    else:
        for key, value in QUIET_ENV.items():
            env.setdefault(key, value)
    return env


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a worker process: this one's, quieted unless debugging, plus ``extra``."""
    env = quiet_env(dict(os.environ), debug_requested())
    env.update(extra)
    return env


def configure(debug: bool) -> None:
    """Quiet this process and its children (or, with ``debug``, let everything through)."""
    quiet_env(os.environ, debug)
    if debug:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietFinder)]
    elif not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


@contextlib.contextmanager
def restored_env(keys: tuple[str, ...] = MANAGED_VARS) -> Iterator[None]:
    """Undo ``configure``'s environment changes on exit (in-process CLI calls, tests)."""
    saved = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def is_noise(line: str) -> bool:
    """True for a framework start-up log line that says nothing to a user."""
    return bool(NOISE.search(line))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Route file descriptor 2 to a temporary file; replay its non-noise lines on exit."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        _flush()
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not is_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                _flush()


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


class _QuietLoader(importlib.machinery.SourceFileLoader):
    """The package's own loader, run inside ``filtered_stderr`` (and a device probe for TensorFlow)."""

    def exec_module(self, module: Any) -> None:
        with filtered_stderr():
            super().exec_module(module)
            if self.name == "tensorflow":
                # cuInit runs on the first device query: do it now, while the noise is filtered.
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices()


class _QuietFinder:
    """A meta-path finder that only swaps the loader of the packages in ``QUIET_IMPORTS``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in QUIET_IMPORTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return None
        spec.loader = _QuietLoader(spec.loader.name, spec.loader.path)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing cached here (``importlib.invalidate_caches`` calls this on every finder)."""
