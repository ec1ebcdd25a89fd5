"""Builds ganserve_client with its gRPC stubs generated from the repository's proto.

The stubs are never committed: build_py runs protoc (>= 3.20, $PROTOC or the one on PATH)
over proto/ (two folders up, or $GANSERVE_PROTO_DIR) into ganserve_client/_proto; the
gRPC stub is built from the generated service descriptor at import (service.py), so no
gRPC code generator is needed. The build turns the generated absolute
imports (`from ganserve.v1 import ...`, `from google.api import ...`) into imports of
this package, so the client never clashes with another `google.api` on the path.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
PROTOS = ["ganserve/v1/ganserve.proto", "google/api/annotations.proto", "google/api/http.proto"]


def generate_stubs(out_root: pathlib.Path) -> None:
    proto_dir = pathlib.Path(os.environ.get("GANSERVE_PROTO_DIR", HERE.parent.parent / "proto"))
    if not (proto_dir / PROTOS[0]).is_file():
        sys.exit(f"ganserve-client: {proto_dir / PROTOS[0]} not found; build from the ganserve repository "
                 "or set GANSERVE_PROTO_DIR to its proto/ folder")
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    if protoc is None:
        sys.exit("ganserve-client: protoc (>= 3.20) is needed to build the stubs (Debian: protobuf-compiler)")
    out = out_root / "ganserve_client" / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([protoc, f"-I{proto_dir}", f"--python_out={out}"] + PROTOS, check=True)
    for folder in [out, out / "ganserve", out / "ganserve" / "v1", out / "google", out / "google" / "api"]:
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").touch()
    pattern = re.compile(r"^from (ganserve\.v1|google\.api) import", re.M)
    for path in out.rglob("*_pb2.py"):
        text = path.read_text()
        path.write_text(pattern.sub(r"from ganserve_client._proto.\1 import", text))


class BuildWithStubs(build_py):
    def run(self):
        generate_stubs(HERE)  # in the source tree too, for `pip install -e` and tests
        super().run()
        generate_stubs(pathlib.Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithStubs})
