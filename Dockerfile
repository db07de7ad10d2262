# Multi-stage build: a release binary, then a slim runtime image running as a non-root user.
# Mount your routes.yaml at /etc/payglot/routes.yaml and a volume for the SQLite store.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# The commit payglot_build_info names (the build context has no .git): --build-arg PAYGLOT_COMMIT=...
ARG PAYGLOT_COMMIT=unknown
ENV PAYGLOT_COMMIT=$PAYGLOT_COMMIT
COPY Cargo.toml Cargo.lock build.rs openapi.yaml ./
COPY src ./src
# The manifest names the benchmarks, so cargo wants their files even for a plain build.
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/payglot --create-home payglot
COPY --from=build /src/target/release/payglot /usr/local/bin/payglot
USER payglot
WORKDIR /var/lib/payglot
VOLUME ["/var/lib/payglot"]
EXPOSE 8080 9901
# Liveness from inside the container; needs admin_listen on its default port 9901.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/payglot", "health", "--url", "http://127.0.0.1:9901/livez"]
ENTRYPOINT ["/usr/local/bin/payglot"]
CMD ["serve", "--config", "/etc/payglot/routes.yaml"]
