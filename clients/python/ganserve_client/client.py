"""Client for the ganserve gRPC API (proto/ganserve/v1/ganserve.proto).

Every method takes the request's documented fields as keyword arguments (names as in the
proto; enums by name, e.g. noise="NOISE_MODE_RANDOM"), so nothing in the API is out of
reach; the common ones have typed parameters. Failures raise ganserve_client.errors.
"""
from __future__ import annotations

import pathlib
import time
import uuid
from typing import Iterator, List, Optional, Sequence, Union

import grpc
import numpy as np
from google.protobuf import json_format
from PIL import Image as PILImage

from ganserve_client import errors, events
from ganserve_client._proto.ganserve.v1 import ganserve_pb2 as pb
from ganserve_client.service import GanServiceStub
from ganserve_client.tensors import image_bytes, latent, to_numpy, to_pil

# Codes after which a job's event stream is re-attached (the job goes on server-side).
_REATTACH = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
             grpc.StatusCode.DEADLINE_EXCEEDED)
_FORMATS = {"png": pb.IMAGE_FORMAT_PNG, "jpeg": pb.IMAGE_FORMAT_JPEG, "jpg": pb.IMAGE_FORMAT_JPEG,
            "raw": pb.IMAGE_FORMAT_RAW_FLOAT}


class Samples(list):
    """Images (PIL) in request order, with `seeds` and, when asked for, `latents`
    (numpy [N, n_latent, style_dim] w+), plus `model` and `channels_moved` (edits)."""

    def __init__(self, images, seeds, latents, model, channels_moved=0):
        super().__init__(images)
        self.seeds: List[int] = seeds
        self.latents: Optional[np.ndarray] = latents
        self.model: str = model
        self.channels_moved: int = channels_moved


def _request(message_type, fields: dict):
    """A request message from keyword fields (proto names), refusing unknown ones."""
    plain = {k: v for k, v in fields.items() if v is not None and not hasattr(v, "DESCRIPTOR")}
    messages = {k: v for k, v in fields.items() if v is not None and hasattr(v, "DESCRIPTOR")}
    message = message_type()
    try:
        json_format.ParseDict(plain, message, ignore_unknown_fields=False)
        for key, value in messages.items():
            getattr(message, key).CopyFrom(value)
    except (json_format.ParseError, AttributeError, TypeError) as e:
        raise errors.InvalidArgument(f"{message_type.DESCRIPTOR.name}: {e}") from None
    return message


class Job:
    """A server-side job (adaptation, inversion, global-direction statistics).

    Iterating yields typed events (events.StateChanged, Progress, Preview) until the job
    ends; a dropped stream is re-attached with WatchJob(after_seq) so no event is lost
    or repeated. `wait()` blocks until the end and returns the final ganserve.v1.Job.
    """

    def __init__(self, client: "Client", job_id: str = "", start=None, reattach_limit: int = 20):
        self._client = client
        self.id = job_id
        self._start = start  # the creating call, retried with its request_id until an id is known
        self.last_seq = 0
        self.snapshot: Optional[pb.Job] = None
        self.reattachments = 0
        self._reattach_limit = reattach_limit

    def _stream(self):
        if not self.id:
            return self._start()
        return self._client._stub.WatchJob(pb.WatchJobRequest(id=self.id, after_seq=self.last_seq),
                                           metadata=self._client._metadata, wait_for_ready=True)

    def __iter__(self) -> Iterator[object]:
        if self.done():
            return
        failures = 0
        while True:
            try:
                for event in self._stream():
                    failures = 0
                    if event.seq and event.seq <= self.last_seq:
                        continue  # already seen (a replay after re-attaching)
                    self.id = event.job.id or self.id
                    self.snapshot = event.job
                    self.last_seq = max(self.last_seq, event.seq)
                    item = events.typed(event)
                    if item is not None:
                        yield item
                    if self.done():
                        return
            except grpc.RpcError as e:
                if e.code() not in _REATTACH or failures >= self._reattach_limit:
                    raise errors.from_rpc_error(e) from None
                failures += 1
                self.reattachments += 1
                time.sleep(min(0.1 * 2 ** failures, 5.0))
                continue
            if self.done():
                return
            # The stream ended before the job did (a server shutting down): re-attach.
            failures += 1
            self.reattachments += 1
            if failures > self._reattach_limit:
                raise errors.Unavailable(f"job {self.id}: the event stream keeps ending before the job")
            time.sleep(min(0.1 * 2 ** failures, 5.0))

    def done(self) -> bool:
        return self.snapshot is not None and self.snapshot.state in events.TERMINAL

    def wait(self) -> pb.Job:
        """Follows the job to its end; returns the final snapshot, raises JobFailed or
        JobCancelled when it did not succeed."""
        for _ in self:
            pass
        if self.snapshot.state == pb.JOB_STATE_FAILED:
            raise errors.JobFailed(self.snapshot)
        if self.snapshot.state == pb.JOB_STATE_CANCELLED:
            raise errors.JobCancelled(self.snapshot)
        return self.snapshot

    @property
    def result(self) -> str:
        """SUCCEEDED: the adapted model's name or the inversion id."""
        return self.snapshot.result if self.snapshot is not None else ""

    def refresh(self) -> pb.Job:
        self.snapshot = self._client._call(self._client._stub.GetJob, pb.GetJobRequest(id=self.id))
        return self.snapshot

    def cancel(self) -> pb.Job:
        self.snapshot = self._client._call(self._client._stub.CancelJob, pb.CancelJobRequest(id=self.id))
        return self.snapshot


class Client:
    """client = Client("localhost:50051", token="...", tls=True)

    `tls`: False (plaintext), True (system roots) or a path / PEM bytes of the CA that
    signed the server's certificate. `token`: the bearer token when the server has
    --auth_tokens_file. `timeout`: seconds for unary calls (None = no deadline).
    """

    def __init__(self, address: str = "localhost:50051", *, token: Optional[str] = None,
                 tls: Union[bool, str, bytes, pathlib.Path] = False, timeout: Optional[float] = 60.0,
                 options: Sequence = ()):
        # A target of several replicas (dns:///service:50051, ipv4:a:p,b:p) spreads calls.
        opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20),
                ("grpc.lb_policy_name", "round_robin")]
        opts += list(options)
        if tls is False or tls is None:
            self._channel = grpc.insecure_channel(address, options=opts)
        else:
            roots = None
            if isinstance(tls, (str, pathlib.Path)):
                roots = pathlib.Path(tls).read_bytes()
            elif isinstance(tls, bytes):
                roots = tls
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots), options=opts)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._stub = GanServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request):
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None

    def _images(self, method, request) -> Samples:
        images, seeds, lat, model, moved = {}, {}, {}, "", 0
        try:
            for batch in method(request, metadata=self._metadata):
                model = batch.model or model
                moved = batch.channels_moved or moved
                for image in batch.images:
                    images[image.index] = to_pil(image)
                    seeds[image.index] = image.seed
                    if image.HasField("latent"):
                        lat[image.index] = to_numpy(image.latent.values)[0]
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        order = sorted(images)
        latents = np.stack([lat[i] for i in order]) if lat and len(lat) == len(order) else None
        return Samples([images[i] for i in order], [seeds[i] for i in order], latents, model, moved)

    def _job(self, method, message_type, fields: dict, fill=None) -> Job:
        """A job handle whose first iteration sends the request; `fill(request)` sets the
        fields JSON cannot (image bytes)."""
        fields.setdefault("request_id", f"py-{uuid.uuid4().hex}")  # makes the creating call safe to retry
        request = _request(message_type, fields)
        if fill is not None:
            fill(request)
        job = Job(self)
        job._start = lambda: method(request, metadata=self._metadata, wait_for_ready=True)
        return job

    # --- models -------------------------------------------------------------------
    def models(self) -> List[pb.Model]:
        return list(self._call(self._stub.ListModels, pb.ListModelsRequest()).models)

    def model(self, name: str) -> pb.Model:
        return self._call(self._stub.GetModel, pb.GetModelRequest(name=name))

    def delete_model(self, name: str) -> None:
        self._call(self._stub.DeleteModel, pb.DeleteModelRequest(name=name))

    # --- sampling and editing ---------------------------------------------------------
    def generate(self, model: str, seeds: Optional[Sequence[int]] = None, *, count: Optional[int] = None,
                 latents=None, space: str = "z", inversion_id: Optional[str] = None,
                 truncation: Optional[float] = None, format: str = "png", return_latents: bool = False,
                 **fields) -> Samples:
        """Renders images; returns Samples (a list of PIL images with .seeds and .latents)."""
        if truncation is not None:
            fields.update(truncation=truncation, has_truncation=True)
        if latents is not None:
            fields["latents"] = latents if isinstance(latents, pb.Latent) else latent(latents, space)
        request = _request(pb.GenerateSamplesRequest, dict(
            model=model, seeds=list(seeds) if seeds is not None else None, count=count, inversion_id=inversion_id,
            format=_FORMATS[format.lower()], return_latents=return_latents, **fields))
        return self._images(self._stub.GenerateSamples, request)

    def edit(self, model: str, *, seeds: Optional[Sequence[int]] = None, latents=None, space: str = "w_plus",
             inversion_id: Optional[str] = None, render_model: Optional[str] = None,
             global_direction: Optional[dict] = None, latent_optimization: Optional[dict] = None,
             direction: Optional[dict] = None, mapper: Optional[dict] = None, return_latents: bool = False,
             **fields) -> Samples:
        """A StyleCLIP edit. Exactly one method, as a dict of its fields, e.g.
        global_direction={"neutral_text": "a face", "target_text": "a smiling face",
        "alphas": [-3, 0, 3], "beta": 0.1}; direction={"direction": latent(d, "w"),
        "strengths": [1, 2]}; mapper={"mapper": "ffhq-mapper-purple-hair", "strengths": [1]}
        (a model train_mapper made)."""
        if latents is not None:
            fields["latents"] = latents if isinstance(latents, pb.Latent) else latent(latents, space)
        if direction is not None:
            d = dict(direction)
            vec = d.pop("direction")
            message = _request(pb.DirectionEdit, d)
            message.direction.CopyFrom(vec if isinstance(vec, pb.Latent) else latent(vec, space))
            fields["direction"] = message
        request = _request(pb.EditRequest, dict(
            model=model, seeds=list(seeds) if seeds is not None else None, inversion_id=inversion_id,
            render_model=render_model, global_direction=global_direction, latent_optimization=latent_optimization,
            mapper=mapper, return_latents=return_latents, **fields))
        return self._images(self._stub.Edit, request)

    # --- jobs -----------------------------------------------------------------------
    def adapt(self, model: str, target_text: Optional[str] = None, *, source_text: Optional[str] = None,
              target_images: Sequence = (), output_name: Optional[str] = None, **fields) -> Job:
        """Starts a domain adaptation (StyleGAN-NADA by default); iterate or wait() the job.
        The new model's name is job.result once it succeeded."""
        fields.update(model=model, target_text=target_text, source_text=source_text, output_name=output_name)
        images = [image_bytes(i) for i in target_images]
        return self._job(self._stub.AdaptDomain, pb.AdaptDomainRequest, fields,
                         lambda request: request.target_images.extend(images))

    def adapt_one_shot(self, model: str, image, *, output_name: Optional[str] = None, **fields) -> Job:
        """Starts a one-shot adaptation (OneshotCLIP) to the domain of one image (bytes, path
        or PIL image): a reference search, then a GAN fine-tune; Progress events carry the
        phase. Settings of the method go in one_shot={...} (e.g. reference_steps)."""
        return self.adapt(model, target_images=[image], output_name=output_name, method="ADAPT_METHOD_ONE_SHOT",
                          **fields)

    def invert(self, model: str, image, **fields) -> Job:
        """Projects a photo (bytes, path or PIL image) into `model`'s latent space; the
        inversion id is job.result (use it as generate(inversion_id=...) or edit(...)).
        landmarks=[(x, y), ...] (5 points: eyes, nose, mouth corners; or dlib's 68)
        FFHQ-aligns the photo first; align=True has the server find them (its landmarks
        model, dlib's detector; the largest face). method="encoder" inverts with a pSp / e4e encoder
        (encoder=NAME, else the server's encoder for the model) in one forward pass, then
        refine_steps=N projector steps if asked; also implied by encoder or refine_steps."""
        data = image_bytes(image)
        method = fields.pop("method", None)
        if method is None and (fields.get("encoder") or fields.get("refine_steps")):
            method = "encoder"
        if method is not None:
            fields["method"] = method if method.startswith("INVERT_METHOD_") else "INVERT_METHOD_" + method.upper()
        if fields.get("landmarks") is not None:
            fields["landmarks"] = [p if isinstance(p, dict) else {"x": float(p[0]), "y": float(p[1])}
                                   for p in fields["landmarks"]]
        return self._job(self._stub.InvertImage, pb.InvertImageRequest, dict(model=model, **fields),
                         lambda request: setattr(request, "image", data))

    def prepare_global_directions(self, model: str, **fields) -> Job:
        """Computes the StyleCLIP global-direction statistics edits with global_direction need."""
        return self._job(self._stub.PrepareGlobalDirections, pb.PrepareGlobalDirectionsRequest,
                         dict(model=model, **fields))

    def train_mapper(self, model: str, text: str, **fields) -> Job:
        """Trains a StyleCLIP latent mapper for `text` on `model`; job.result is the mapper's
        model name, for edit(mapper={"mapper": name}). The server refuses the official
        identity-loss weight (0.1) while it has no ArcFace network: send id_lambda=0."""
        return self._job(self._stub.TrainMapper, pb.TrainMapperRequest, dict(model=model, text=text, **fields))

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (iterate it to follow its events from the start)."""
        handle = Job(self, job_id)
        handle.refresh()
        return handle

    def jobs(self, kind: Optional[str] = None, state: Optional[str] = None) -> Iterator[pb.Job]:
        """Every job, newest first (pages fetched as needed); kind e.g. "JOB_KIND_ADAPT"."""
        token = ""
        while True:
            page = self._call(self._stub.ListJobs, _request(pb.ListJobsRequest, dict(
                kind=kind, state=state, page_token=token or None, page_size=100)))
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return
