# A raft-election image: the release binary on a slim Debian.
#   docker build -t raft-election:latest .
# Not built in CI (no container engine there); see docs/operators.md.

FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin raft-election

FROM debian:bookworm-slim
COPY --from=build /src/target/release/raft-election /usr/local/bin/raft-election
# Not root; the state lives on the volume at /data.
RUN useradd --system --uid 10001 raft && mkdir /data && chown raft /data
USER raft
EXPOSE 7001 8001
ENTRYPOINT ["raft-election"]
CMD ["node", "--help"]
