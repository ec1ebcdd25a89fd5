# ganserve images. Build (from the repository root):
#   docker build --target cpu -t ganserve:cpu .
# The CPU image is built from Debian bookworm packages with the same install script as
# the README. A CUDA image (cxx11-ABI LibTorch with CUDA from the official LibTorch
# distribution) is not written yet.

FROM debian:bookworm AS build
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANSERVE_BUILD_TESTS=OFF -DGANSERVE_BUILD_BENCH=OFF \
 && cmake --build build -j "$(nproc)" \
 && install -D build/server/ganserve /out/ganserve \
 && install -D build/client/ganctl /out/ganctl

FROM debian:bookworm-slim AS cpu
# Run-time libraries only (the -dev packages' shared objects).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch1.13 libgrpc++1.51 libprotobuf32 libabsl20220623 \
      libspdlog1.10 libprometheus-cpp-core1.0 libsqlite3-0 libspng0 libturbojpeg0 libutf8proc2 zlib1g \
      libopenblas0-openmp ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ganserve ganserve \
 && mkdir -p /var/lib/ganserve/data /models && chown -R ganserve /var/lib/ganserve /models
COPY --from=build /out/ganserve /out/ganctl /usr/local/bin/
USER ganserve
ENV GANSERVE_LISTEN=0.0.0.0:50051 \
    GANSERVE_METRICS_LISTEN=0.0.0.0:9464 \
    GANSERVE_DATA_DIR=/var/lib/ganserve/data \
    GANSERVE_MODEL_REPOSITORY=/models \
    GANSERVE_LOG_FORMAT=json
VOLUME ["/var/lib/ganserve/data", "/models"]
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
  CMD ["ganctl", "--server", "127.0.0.1:50051", "--timeout", "4", "health"]
ENTRYPOINT ["ganserve"]
