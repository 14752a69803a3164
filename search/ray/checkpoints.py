"""A trial's Ray Tune checkpoints: one per epoch, the newest holding the training state.

Ray keeps every checkpoint *directory*, but only the newest holds a training state: once a new
checkpoint is persisted, the trial deletes the state from its older ones (:func:`prune_states`), so
the disk per trial is one training state plus an empty directory per epoch. Ray's own pruning
(``num_to_keep=1``) is not used: the experiment snapshot Ray restores after a driver kill can be
older than the newest checkpoint and name a deleted directory ("does not exist on storage
anymore"); a kept directory without a state makes the trial look for the newest state among its
siblings instead (:func:`load_state`). Beside the state, :data:`HISTORY_FILE` keeps every result up
to that epoch (``gatesearch resume`` logs the epochs MLflow lacks from it). The state's torch I/O is
:mod:`gatesearch.objectives.checkpoint`'s.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import posixpath
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from ray import tune

from gatesearch.search.ray.state import HISTORY_FILE

CHECKPOINTS = tune.CheckpointConfig(num_to_keep=None)
#: the training state's file in a checkpoint (:data:`gatesearch.objectives.checkpoint.STATE_FILE`;
#: not imported from there, which would import torch on the driver)
STATE_FILE = "state.pt"


@contextmanager
def new_checkpoint(state: Mapping[str, Any], history: list[dict]) -> Iterator[Any]:
    """A checkpoint of ``state`` and the results so far, in a temporary directory, to report."""
    from gatesearch.objectives.checkpoint import save_state

    with tempfile.TemporaryDirectory(prefix="gs-ckpt") as d:
        save_state(state, d)
        with open(os.path.join(d, HISTORY_FILE), "w", encoding="utf-8") as f:
            json.dump(history, f)
        yield tune.Checkpoint.from_directory(d)


def jsonable(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-representable entries of a result (numbers as floats/ints, strings)."""
    out = {}
    for k, v in result.items():
        if isinstance(v, (bool, int, str)) or v is None:
            out[k] = v
        elif isinstance(v, float) or hasattr(v, "__float__"):
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                continue
    return out


def _checkpoint_dirs(checkpoint) -> list[str]:
    """The trial's checkpoint directories on ``checkpoint``'s storage, newest first."""
    from pyarrow import fs as pafs

    parent = posixpath.dirname(checkpoint.path.rstrip("/"))
    infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(parent))
    dirs = [i.path for i in infos if i.type == pafs.FileType.Directory
            and posixpath.basename(i.path).startswith("checkpoint_")]
    return sorted(dirs, reverse=True)  # checkpoint_000012 > checkpoint_000011


def load_state(checkpoint, device: str):
    """The newest readable training state among the trial's checkpoints (``checkpoint`` is the one
    Ray restored, perhaps older than the newest: see the module's docstring), or None to start over."""
    from gatesearch.objectives.checkpoint import load_state as read_state

    try:
        candidates = _checkpoint_dirs(checkpoint)
    except OSError as e:
        candidates = [checkpoint.path]
        logging.getLogger(__name__).warning("cannot list the trial's checkpoints (%s)", e)
    for path in candidates:
        try:
            with checkpoint.filesystem.open_input_file(f"{path}/{STATE_FILE}") as f:
                data = f.read()
            state = read_state(data, device)
            state["history"] = _read_history(checkpoint.filesystem, path)
            return state
        except FileNotFoundError:
            continue  # a pruned older checkpoint
        except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
            # e.g. cut short by a node death
            logging.getLogger(__name__).warning("skipping an unreadable checkpoint %s (%s)", path, e)
    logging.getLogger(__name__).warning("trial restarts from scratch: none of its checkpoints is readable")
    return None


def _read_history(filesystem, path: str) -> list[dict]:
    """The results kept beside a checkpoint's state ([] for a checkpoint written before they were)."""
    try:
        with filesystem.open_input_file(f"{path}/{HISTORY_FILE}") as f:
            history = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


def prune_states(current) -> None:
    """Delete the training state of every checkpoint of the trial older than ``current``."""
    if current is None:
        return
    newest = posixpath.basename(current.path.rstrip("/"))
    for path in _checkpoint_dirs(current):
        if posixpath.basename(path) < newest:
            for name in (STATE_FILE, HISTORY_FILE):
                try:
                    current.filesystem.delete_file(f"{path}/{name}")
                except FileNotFoundError:
                    continue
