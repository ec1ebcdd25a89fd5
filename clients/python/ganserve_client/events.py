"""Typed job events (the payloads of ganserve.v1.JobEvent)."""
from __future__ import annotations

import dataclasses
from typing import Dict, List

from PIL import Image as PILImage

from ganserve_client._proto.ganserve.v1 import ganserve_pb2 as pb
from ganserve_client.tensors import to_pil

TERMINAL = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


@dataclasses.dataclass
class StateChanged:
    """The job changed state (queued, running, a new queue position, or its end)."""
    seq: int
    job: pb.Job

    @property
    def state(self) -> str:
        return pb.JobState.Name(self.job.state).replace("JOB_STATE_", "").lower()


@dataclasses.dataclass
class Progress:
    """Steps done, the latest loss terms by name, the rate and the estimated time left;
    `phase` names the step's phase in jobs that have several (one-shot adaptation:
    "reference_search", then "fine_tune"), else ""."""
    seq: int
    job: pb.Job
    step: int
    total_steps: int
    losses: Dict[str, float]
    steps_per_second: float
    eta_seconds: float
    phase: str = ""


@dataclasses.dataclass
class Preview:
    """Preview grids: `source` (the frozen generator, first preview only) and `current`."""
    seq: int
    job: pb.Job
    step: int
    source: List[PILImage.Image]
    current: List[PILImage.Image]


def typed(event: pb.JobEvent):
    """The typed form of a JobEvent; None for heartbeats."""
    which = event.WhichOneof("payload")
    if which == "progress":
        p = event.progress
        return Progress(event.seq, event.job, p.step, p.total_steps, dict(p.losses), p.steps_per_second,
                        p.eta_seconds, p.phase)
    if which == "preview":
        p = event.preview
        return Preview(event.seq, event.job, p.step, [to_pil(i) for i in p.source], [to_pil(i) for i in p.current])
    if which == "heartbeat":
        return None
    return StateChanged(event.seq, event.job)
