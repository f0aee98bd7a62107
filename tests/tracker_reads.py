"""Reading back what a run sent to its trackers, offline: the steps each metric got.

W&B in offline mode keeps each run (and each resumption of it) as a `run-<id>.wandb` file under
`<run>/wandb/offline-run-*/`: W&B's record log (a 7-byte header, then 32 KiB blocks of records, each
a 7-byte header of checksum, length and kind, the kinds saying whether a record is whole or which
piece of it), every record a `wandb_internal_pb2.Record`. No public reader reads it without a server,
so this one follows that layout. MLflow's file store is read through its own client, TensorBoard's
events through TensorBoard's own loader.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

TRACKERS = "tracking.backends=[tensorboard,wandb,mlflow]"  # the override that turns every tracker on
_BLOCK = 32 * 1024
_HEADER = 7  # the file's: b":W&B" + magic + version; each record's: crc32 (4) + length (2) + kind (1)
_WHOLE, _LAST = 1, 4


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B record log"
    pos, piece = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if length == 0 and kind == 0:
            pos += left
            continue
        piece += data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (_WHOLE, _LAST):
            yield piece
            piece = b""


def wandb_steps(run_dir: Path, key: str) -> list[int]:
    """The steps of metric `key` over every offline W&B run file of the run, in the order written."""
    from wandb.proto import wandb_internal_pb2 as pb

    steps: list[tuple[str, int]] = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        for raw in _records(path):
            rec = pb.Record()
            rec.ParseFromString(raw)
            if rec.WhichOneof("record_type") != "history":
                continue
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            if key in items:
                steps.append((path.parent.name, int(items["_step"])))
    return [s for _, s in steps]


def mlflow_steps(run_dir: Path, stage: str, key: str) -> list[int]:
    """The steps of metric `key` in the MLflow run of `stage` (file store in the run folder)."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    ids = json.loads((run_dir / stage / "trackers.json").read_text())
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    return [m.step for m in client.get_metric_history(ids["mlflow"], key)]


def tensorboard_steps(tb_dir: Path, key: str) -> list[int]:
    """The steps of scalar `key` in every event file under `tb_dir`, in file order."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            if any(v.tag == key for v in event.summary.value):
                steps.append(event.step)
    return steps
