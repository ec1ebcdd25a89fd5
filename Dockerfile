# ganserve images. Build from the repository root:
#   docker build --target cpu  -t ganserve:cpu  .   # Debian bookworm packages, CPU LibTorch 1.13
#   docker build --target cuda -t ganserve:cuda .   # official cxx11-ABI LibTorch with CUDA
# Run (the model repository and data as volumes; GPU via the NVIDIA container toolkit):
#   docker run --gpus all -p 50051:50051 -p 50052:50052 -p 9464:9464 \
#     -v $PWD/models:/var/lib/ganserve/models -v ganserve-data:/var/lib/ganserve/data ganserve:cuda
# Both images: non-root user 10001, gRPC on 50051, plaintext health-only gRPC on 50052,
# Prometheus /metrics on 9464, JSON logs, HEALTHCHECK through ganctl.

# ---- CPU: built from Debian packages with the README's install script ----------------
FROM debian:bookworm AS build
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN GANSERVE_BUILD_ONLY=1 bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANSERVE_BUILD_TESTS=OFF -DGANSERVE_BUILD_BENCH=OFF \
 && cmake --build build -j "$(nproc)" \
 && install -D build/server/ganserve /out/ganserve \
 && install -D build/client/ganctl /out/ganctl

FROM debian:bookworm-slim AS runtime-base
# Run-time libraries of the build's Debian packages (gRPC, protobuf, ...), no LibTorch.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgrpc++1.51 libprotobuf32 libabsl20220623 \
      libspdlog1.10 libprometheus-cpp-core1.0 libsqlite3-0 libpq5 libspng0 libturbojpeg0 libutf8proc2 zlib1g \
      libcpp-httplib0.11 libdlib19.1 \
      libopenblas0-openmp ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ganserve ganserve \
 && mkdir -p /var/lib/ganserve/data /var/lib/ganserve/models && chown -R ganserve /var/lib/ganserve
ENV GANSERVE_LISTEN=0.0.0.0:50051 \
    GANSERVE_HEALTH_LISTEN=0.0.0.0:50052 \
    GANSERVE_METRICS_LISTEN=0.0.0.0:9464 \
    GANSERVE_DATA_DIR=/var/lib/ganserve/data \
    GANSERVE_MODEL_REPOSITORY=/var/lib/ganserve/models \
    GANSERVE_LOG_FORMAT=json
VOLUME ["/var/lib/ganserve/data", "/var/lib/ganserve/models"]
EXPOSE 50051 50052 8080 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
  CMD ["ganctl", "--server", "127.0.0.1:50052", "--timeout", "4", "health"]
ENTRYPOINT ["ganserve"]

FROM runtime-base AS cpu
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libtorch1.13 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ganserve /out/ganctl /usr/local/bin/
USER ganserve

# ---- CUDA: the official LibTorch distribution (cxx11 ABI, CUDA libraries bundled) ------
# The host provides the driver (NVIDIA container toolkit). Not built in CI: no Docker
# engine and no GPU there; LibTorch 2.x compiles the same ATen calls as Debian's 1.13.
FROM debian:bookworm AS cuda-build
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu121/libtorch-cxx11-abi-shared-with-deps-2.1.2%2Bcu121.zip
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN GANSERVE_EXTERNAL_TORCH=1 GANSERVE_BUILD_ONLY=1 bash /src/scripts/install-deps.sh \
 && apt-get update && apt-get install -y --no-install-recommends curl unzip \
 && curl -fsSL "$LIBTORCH_URL" -o /tmp/libtorch.zip && unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=/opt/libtorch \
      -DGANSERVE_BUILD_TESTS=OFF -DGANSERVE_BUILD_BENCH=OFF \
 && cmake --build build -j "$(nproc)" \
 && install -D build/server/ganserve /out/ganserve \
 && install -D build/client/ganctl /out/ganctl

FROM runtime-base AS cuda
COPY --from=cuda-build /opt/libtorch/lib /opt/libtorch/lib
COPY --from=cuda-build /out/ganserve /out/ganctl /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    GANSERVE_DEVICE=cuda
USER ganserve
