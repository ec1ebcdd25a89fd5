"""ganserve_client: a Python client for ganserve (StyleGAN2 sampling, domain adaptation,
inversion and StyleCLIP editing).

    from ganserve_client import Client
    client = Client("localhost:50051")
    images = client.generate("ffhq", seeds=[1, 2, 3])
"""
from ganserve_client import errors, events
from ganserve_client._proto.ganserve.v1 import ganserve_pb2 as pb
from ganserve_client.client import Client, Job, Samples
from ganserve_client.tensors import from_numpy, latent, to_numpy

__all__ = ["Client", "Job", "Samples", "errors", "events", "pb", "from_numpy", "latent", "to_numpy"]
