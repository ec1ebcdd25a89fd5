"""The Python client against a running ganserve with the demo pack (ganctl local
make-demo): sample -> adapt (its event stream dropped mid-job and resumed) -> generate on
the adapted model -> invert -> edit, plus typed errors.

Usage: python_client_flow.py GRPC_ADDRESS WORK_DIR
"""
import socket
import sys
import threading

import numpy as np

from ganserve_client import Client, errors, events, latent


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", flush=True)
        sys.exit(1)


class DroppingProxy:
    """A TCP forwarder in front of the server whose connections can be cut at once,
    as a load balancer restart or a network blip would."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets = []
        self.drops = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_all(self):
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets = []
            self.drops += 1


def main():
    address, work = sys.argv[1], sys.argv[2]
    proxy = DroppingProxy(address)
    client = Client(f"127.0.0.1:{proxy.port}", options=[("grpc.initial_reconnect_backoff_ms", 100),
                                                      ("grpc.min_reconnect_backoff_ms", 100)])

    print("--- models and sampling", flush=True)
    names = [m.name for m in client.models()]
    check("demo" in names and "demo-clip" in names, f"models: {names}")
    base = client.generate("demo", seeds=[1, 2, 3], return_latents=True)
    check(len(base) == 3 and base[0].size == (32, 32), f"generate: {len(base)} images of {base[0].size}")
    check(base.seeds == [1, 2, 3], f"seeds {base.seeds}")
    check(base.latents is not None and base.latents.shape[0] == 3 and base.latents.ndim == 3,
          f"latents {None if base.latents is None else base.latents.shape}")
    # The returned w+ is what the generator consumed (truncation applied): render it as is.
    again = client.generate("demo", latents=base.latents[:1], space="w_plus", truncation=1.0)
    diff = np.abs(np.asarray(again[0], np.int16) - np.asarray(base[0], np.int16)).max()
    check(diff <= 1, f"rendering the returned w+ differs from the seed's image by {diff} levels")

    print("--- typed errors", flush=True)
    try:
        client.generate("no-such-model", seeds=[1])
        check(False, "an unknown model did not raise")
    except errors.NotFound as e:
        check("no-such-model" in e.message, f"NotFound message: {e.message}")
    try:
        client.generate("demo", seeds=[1], no_such_field=3)
        check(False, "an unknown field did not raise")
    except errors.InvalidArgument as e:
        check("no_such_field" in e.message, f"InvalidArgument message: {e.message}")
    try:
        client.adapt("demo", "sketch", iterations=99999).wait()
        check(False, "an out-of-range field did not raise")
    except errors.InvalidArgument as e:
        check("iterations" in e.message, f"range message: {e.message}")

    print("--- adapt, with the event stream cut after the first progress event", flush=True)
    job = client.adapt("demo", "pencil sketch", source_text="photo", output_name="demo-py", iterations=12,
                       preview_every=4, layer_preset="LAYER_PRESET_NO_FINE", adam_steps="ADAM_STEPS_SHARED")
    seqs, kinds = [], []
    for event in job:
        seqs.append(event.seq)
        kinds.append(type(event).__name__)
        if isinstance(event, events.Progress) and proxy.drops == 0:
            proxy.drop_all()
    final = job.wait()
    check(proxy.drops == 1 and job.reattachments >= 1, f"drops {proxy.drops}, re-attachments {job.reattachments}")
    check(seqs == sorted(set(seqs)), f"events repeated or out of order: {seqs}")
    check(final.state == 3 and job.result == "demo-py", f"job ended {final.state} with result {job.result!r}")
    check("Progress" in kinds and "Preview" in kinds and "StateChanged" in kinds, f"event kinds {kinds}")
    replay = [e.seq for e in client.job(job.id)]
    missing = sorted(set(s for s in replay if s <= job.last_seq) - set(seqs))
    check(not missing, f"events lost across the drop: {missing}")

    print("--- one-shot adaptation to one image: both phases, then the model serves samples", flush=True)
    target = client.generate("demo", seeds=[7])[0]
    job = client.adapt_one_shot("demo", target, output_name="demo-py-os", iterations=3, preview_every=0,
                                one_shot={"reference_steps": 2})
    phases = [e.phase for e in job if isinstance(e, events.Progress)]
    job.wait()
    check(phases == ["reference_search"] * 2 + ["fine_tune"] * 3, f"one-shot phases {phases}")
    check(job.result == "demo-py-os", f"one-shot result {job.result!r}")
    check(len(client.generate("demo-py-os", seeds=[1])) == 1, "the one-shot model did not render")

    print("--- generate on the adapted model", flush=True)
    adapted = client.generate("demo-py", seeds=[1])
    check(np.asarray(adapted[0]).tobytes() != np.asarray(base[0]).tobytes(), "the adapted model renders the base")

    print("--- invert", flush=True)
    inversion = client.invert("demo", base[1], steps=20, preview_every=10)
    previews = [e for e in inversion if isinstance(e, events.Preview)]
    inversion.wait()
    check(inversion.result.startswith("inv-") and previews, f"inversion {inversion.result!r}, {len(previews)} previews")
    rendered = client.generate("demo-py", inversion_id=inversion.result)
    check(len(rendered) == 1, "the inversion did not render through the adapted model")

    print("--- edit: a w direction swept over strengths, rendered in the adapted domain", flush=True)
    w_dim = base.latents.shape[2]
    edited = client.edit("demo", inversion_id=inversion.result, render_model="demo-py",
                         direction={"direction": latent(np.full((w_dim,), 0.5), "w"), "strengths": [-2, 0, 2]})
    check(len(edited) == 3, f"edit returned {len(edited)} images")
    check(np.asarray(edited[0]).tobytes() != np.asarray(edited[2]).tobytes(), "strength -2 and +2 rendered alike")

    print("--- a latent mapper trained on the inversion, applied in the adapted domain", flush=True)
    mapper = client.train_mapper("demo", "a pencil sketch", output_name="demo-py-mapper", steps=2, batch_size=1,
                                 inversion_ids=[inversion.result], id_lambda=0, clip_model="demo-clip",
                                 preview_every=0)
    final = mapper.wait()
    check(mapper.result == "demo-py-mapper", f"the mapper job ended {final.state}: {final.error_message}")
    mapped = client.edit("demo", inversion_id=inversion.result, render_model="demo-py",
                         mapper={"mapper": "demo-py-mapper", "strengths": [0, 1]})
    check(len(mapped) == 2, f"the mapper edit returned {len(mapped)} images")
    client.delete_model("demo-py-mapper")

    print("--- jobs", flush=True)
    listed = {j.id for j in client.jobs()}
    check(job.id in listed and inversion.id in listed, "jobs() misses the adaptation or the inversion")
    client.delete_model("demo-py")
    print("python client: all checks passed", flush=True)


if __name__ == "__main__":
    main()
