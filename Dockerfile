# syntax=docker/dockerfile:1.7
#
# patchbay in a container: a builder with the Rust toolchain, then a slim
# runtime image with the binary alone, run as a user without privileges.
#
#   docker build -t patchbay:latest .
#
# The build links V8 (the `v8` crate). Its build script downloads a prebuilt
# library; without internet access hand it a local copy as the named build
# context `v8`, a folder holding
# librusty_v8_release_x86_64-unknown-linux-gnu.a.gz (this repository's CI
# keeps one in ../shared/v8):
#
#   docker build --build-context v8=../shared/v8 -t patchbay:latest .
#
# docs/deploy.md has the compose file that builds this image.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# Empty unless `--build-context v8=DIR` replaces it with a folder holding the
# V8 archive.
FROM scratch AS v8

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
RUN --mount=type=bind,from=v8,target=/v8 \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    archive=/v8/librusty_v8_release_x86_64-unknown-linux-gnu.a.gz; \
    if [ -f "$archive" ]; then export RUSTY_V8_ARCHIVE="$archive"; fi; \
    cargo build --release --locked --package patchbay; \
    install -m 0755 target/release/patchbay /usr/local/bin/patchbay

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The binary needs only libc, libm and libgcc_s, and trusts the webpki roots
# it carries (no system certificate store). curl is for HEALTHCHECK.
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 patchbay; \
    useradd --system --uid 10001 --gid patchbay --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin patchbay
COPY --from=builder /usr/local/bin/patchbay /usr/local/bin/patchbay
USER 10001:10001
WORKDIR /bots
EXPOSE 8080
# Liveness: /healthz answers 200 while the process serves (docs/http-api.md);
# readiness (/readyz, 503 while draining) is for the balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "--output", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["patchbay"]
# Mount a bot file at /bots/bot.yaml, or give your own `serve ...` command.
CMD ["serve", "--bot", "/bots/bot.yaml", "--listen", "0.0.0.0:8080"]
