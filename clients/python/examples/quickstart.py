"""Sample a base model, adapt it to a text domain while watching progress, and render
the same seeds through the adapted model. Copy and change the names.

    python3 quickstart.py localhost:50051 out/
(models "demo" and CLIP "demo-clip" come from `ganctl local make-demo`; use your own.)
"""
import pathlib
import sys

from PIL import Image

from ganserve_client import Client, errors, events

address = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
out = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "out")
out.mkdir(parents=True, exist_ok=True)
BASE = "demo"

with Client(address) as client:
    before = client.generate(BASE, seeds=[1, 2, 3, 4])

    job = client.adapt(BASE, "pencil sketch", source_text="photo", iterations=8, preview_every=4)
    for event in job:  # re-attaches by itself if the connection drops
        if isinstance(event, events.Progress):
            print(f"step {event.step}/{event.total_steps} losses {event.losses}")
        elif isinstance(event, events.StateChanged):
            print(f"job {event.job.id} {event.state}")
    try:
        adapted_model = job.wait().result
    except errors.JobFailed as e:
        sys.exit(str(e))

    after = client.generate(adapted_model, seeds=[1, 2, 3, 4])
    w, h = before[0].size
    grid = Image.new("RGB", (w * 4, h * 2))
    for i, (a, b) in enumerate(zip(before, after)):
        grid.paste(a, (i * w, 0))
        grid.paste(b, (i * w, h))
    grid.save(out / "grid.png")
    print(f"{adapted_model}: before/after grid in {out / 'grid.png'}")
    client.delete_model(adapted_model)
