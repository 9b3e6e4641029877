# Heartbeat in a container: build stage with the Rust toolchain (DuckDB's bundled C++ needs a
# C++ compiler, which the rust image has), then a slim runtime running as an unprivileged user.
# Untested: no Docker engine runs on the machines this project is built on.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p heartbeat-server --bin heartbeat \
 && strip --strip-debug -o /heartbeat target/release/heartbeat

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/heartbeat --create-home heartbeat
COPY --from=build /heartbeat /usr/local/bin/heartbeat
USER heartbeat
ENV HEARTBEAT_LISTEN=0.0.0.0:3000 \
    HEARTBEAT_DATA_DIR=/var/lib/heartbeat \
    HEARTBEAT_LOG_FORMAT=json
VOLUME /var/lib/heartbeat
EXPOSE 3000
# bash's /dev/tcp: no HTTP client needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["heartbeat"]
CMD ["serve"]
