# fiso-flow container image: Swift 6.3 build stage → slim Debian runtime.
#
#   docker build -t fiso-flow .
#   docker run --rm -p 8081:8081 -p 9090:9090 fiso-flow        # runs the example flow
#   curl -s localhost:8081/ingest -d '{"order_id":"123","amount":99.99,"customer":"ada"}'
#
# The build stage runs scripts/image-layout.sh, the script that also lays the same tree out on a
# machine without Docker (.build-image/rootfs; `--check` starts it and waits for /readyz), so the
# image and the local layout cannot drift apart.
#
# Runtime libraries: the Swift runtime and Foundation are linked statically
# (--static-swift-stdlib); librdkafka and zlib come from Debian. WASM engines: WasmKit is inside
# the binary; the Wasmtime JIT engine is loaded at run time from /usr/local/lib/libwasmtime.so,
# which the `wasmtime` stage takes from the official C API release (the version the engine is
# tested with). Build with --build-arg WASMTIME_VERSION=none to leave it out (engine: auto then
# falls back to WasmKit).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG WASMTIME_VERSION=50.0.1

FROM ${RUNTIME_IMAGE} AS wasmtime
ARG WASMTIME_VERSION
RUN mkdir -p /out && if [ "$WASMTIME_VERSION" != none ]; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ca-certificates curl xz-utils \
        && curl -fsSL "https://github.com/bytecodealliance/wasmtime/releases/download/v${WASMTIME_VERSION}/wasmtime-v${WASMTIME_VERSION}-x86_64-linux-c-api.tar.xz" \
            | tar -xJ -C /tmp \
        && cp "/tmp/wasmtime-v${WASMTIME_VERSION}-x86_64-linux-c-api/lib/libwasmtime.so" /out/; \
    fi

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# scripts/setup.sh installs the build's Debian packages (librdkafka-dev, pkg-config, zlib1g-dev).
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh build
COPY . .
RUN scripts/image-layout.sh --out /image

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librdkafka1 zlib1g libstdc++6 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 fiso \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin fiso
COPY --from=build /image/ /
COPY --from=wasmtime /out/ /usr/local/lib/
# Every shared library the binary needs is in this stage (the build fails here otherwise).
RUN if ldd /usr/local/bin/fiso-flow | grep 'not found'; then exit 1; fi \
    && /usr/local/bin/fiso-flow validate /etc/fiso/flows

# Non-root; nothing in the image is writable by it. Kubernetes runs it with a read-only root
# filesystem and an emptyDir at /tmp (deploy/base/deployment.yaml).
USER 65532:65532
ENV FISO_CONFIG_DIR=/etc/fiso/flows \
    FISO_METRICS_ADDR=:9090 \
    FISO_KAFKA_CONFIG=/etc/fiso/kafka/kafka.yaml
# 8081: the HTTP source of the example flow (and the guide's flows); 9090: /metrics, /healthz, /readyz.
EXPOSE 8081 9090
WORKDIR /
ENTRYPOINT ["/usr/local/bin/fiso-flow"]
CMD ["run"]
