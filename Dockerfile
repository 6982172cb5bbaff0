# syntax=docker/dockerfile:1
# Multi-stage build of the sidecar: a Rust toolchain image builds a release binary, a slim
# Debian image runs it as an unprivileged user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin iap-sidecar

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/iap-sidecar iap
COPY --from=build /src/target/release/iap-sidecar /usr/local/bin/iap-sidecar
USER iap
WORKDIR /var/lib/iap-sidecar
# In a container the sidecar must listen on all interfaces; publish the port on loopback
# (see compose.yaml) or behind a reverse proxy.
ENV IAP_SIDECAR__HTTP__BIND=0.0.0.0:8070
EXPOSE 8070
ENTRYPOINT ["iap-sidecar"]
CMD ["serve"]
