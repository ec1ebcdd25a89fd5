#!/usr/bin/env python3
"""Checks the dependency rules of the source tree (README, "Layout").

1. core/ never includes gRPC, protobuf, prometheus-cpp, the API or the edges.
2. server/ reaches the core through core/service (plus the job engine's event types,
   the executor and utilities): no algorithm room (adapt, invert, edit, models,
   checkpoint) is included from server/.
3. LibTorch headers (ATen, c10, torch, and the models' *_impl.h modules) are included
   only by sources of CMake targets that declare LibTorch in their DEPS: ganserve_torch,
   ganserve_models_common or a model's *_internal target.

Usage: check_layout.py REPO_ROOT. Prints each violation; exit 1 if any.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]', re.M)
TORCH = re.compile(r"^(ATen/|c10/|torch/)|_impl\.h$|^core/models/common/(torch_convert|adam)\.h$")
FORBIDDEN_IN_CORE = re.compile(r"^(grpc|grpcpp|google/protobuf|prometheus|ganserve/v1|server/|client/)")
ALGORITHM_ROOMS = re.compile(r"^core/(adapt|invert|edit|models|checkpoint)/")
TORCH_DEPS = re.compile(r"\b(ganserve_torch|ganserve_models_common|ganserve_\w+_internal)\b")

problems = []


def sources(folder):
    return [p for p in (root / folder).rglob("*") if p.suffix in (".h", ".cc")]


def includes(path):
    return INCLUDE.findall(path.read_text(errors="replace"))


# Targets of core/CMakeLists.txt: which sources they hold, whether they declare LibTorch.
declares_torch = {}  # relative source path -> bool
cmake = (root / "core/CMakeLists.txt").read_text()
for m in re.finditer(r"ganserve_library\((\w+)(.*?)\)\n", cmake, re.S):
    body = m.group(2)
    srcs = re.search(r"SOURCES(.*?)(DEPS|$)", body, re.S).group(1).split()
    deps = body.split("DEPS", 1)[1] if "DEPS" in body else ""
    torch = bool(TORCH_DEPS.search(deps)) or m.group(1) == "ganserve_models_common"
    for s in srcs:
        declares_torch["core/" + s] = torch
        declares_torch["core/" + s[:-3] + ".h"] = torch  # its header belongs to it

for path in sources("core"):
    rel = path.relative_to(root).as_posix()
    for inc in includes(path):
        if FORBIDDEN_IN_CORE.match(inc):
            problems.append(f"{rel}: core includes {inc}")
        if TORCH.search(inc) and not declares_torch.get(rel, False):
            # An *_impl.h module may include LibTorch: it is the model target's own header.
            folder_torch = any(declares_torch.get(k) for k in declares_torch if k.rsplit("/", 1)[0] == rel.rsplit("/", 1)[0])
            if not (rel.endswith("_impl.h") or rel.startswith("core/models/common/")) or not folder_torch:
                problems.append(f"{rel}: includes {inc} but its CMake target does not declare LibTorch")

for path in sources("server"):
    rel = path.relative_to(root).as_posix()
    for inc in includes(path):
        if ALGORITHM_ROOMS.match(inc):
            problems.append(f"{rel}: server includes the algorithm header {inc}; go through core/service")
        if TORCH.search(inc):
            problems.append(f"{rel}: server includes LibTorch ({inc})")

for p in problems:
    print(p)
print(f"layout: {len(problems)} violation(s)")
sys.exit(1 if problems else 0)
