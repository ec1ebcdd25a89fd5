"""numpy <-> ganserve.v1.Tensor / Latent, and images <-> PIL."""
from __future__ import annotations

import io
import pathlib
from typing import Union

import numpy as np
from PIL import Image as PILImage

from ganserve_client._proto.ganserve.v1 import ganserve_pb2 as pb

SPACES = {"z": pb.LATENT_SPACE_Z, "w": pb.LATENT_SPACE_W, "w_plus": pb.LATENT_SPACE_W_PLUS,
          "wplus": pb.LATENT_SPACE_W_PLUS, "s": pb.LATENT_SPACE_S}


def to_numpy(tensor: pb.Tensor) -> np.ndarray:
    """A Tensor as a float32 array of its shape."""
    return np.asarray(tensor.data, dtype=np.float32).reshape(tuple(tensor.shape))


def from_numpy(array) -> pb.Tensor:
    """A float32 Tensor (C order) from any array-like."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError("tensor values must be finite (the server rejects NaN and Inf)")
    t = pb.Tensor(shape=list(a.shape))
    t.data.extend(a.ravel().tolist())
    return t


def latent(array, space: str = "w_plus") -> pb.Latent:
    """A Latent: `space` is z, w, w_plus or s; shapes as ganserve.proto documents."""
    key = space.lower().replace("+", "_plus").replace("-", "_")
    if key not in SPACES:
        raise ValueError(f"latent space '{space}': expected one of z, w, w_plus, s")
    return pb.Latent(space=SPACES[key], values=from_numpy(array))


def image_bytes(image: Union[bytes, str, pathlib.Path, PILImage.Image]) -> bytes:
    """PNG/JPEG bytes from bytes, a file path or a PIL image (sent as PNG)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, pathlib.Path)):
        return pathlib.Path(image).read_bytes()
    if isinstance(image, PILImage.Image):
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"an image must be bytes, a path or a PIL.Image, not {type(image).__name__}")


def to_pil(image: pb.Image) -> PILImage.Image:
    """An encoded Image as PIL (RAW_FLOAT images are mapped from [-1, 1] to 8 bits)."""
    if image.format == pb.IMAGE_FORMAT_RAW_FLOAT:
        raw = to_numpy(image.raw)[0].transpose(1, 2, 0)
        return PILImage.fromarray(np.clip((raw + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8))
    out = PILImage.open(io.BytesIO(image.data))
    out.load()
    return out
