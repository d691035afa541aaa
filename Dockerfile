# syntax=docker/dockerfile:1
#
# One small image holding the one `bookinfo` binary; the arguments pick the service:
#   docker build -t bookinfo:0.1.0 .
#   docker run --rm -p 9080:9080 bookinfo:0.1.0 serve productpage
# `curl` in the image is the same binary under that name (a plain-HTTP subset of curl), for the
# `kubectl exec ... -- curl ...` commands of Istio's documentation.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, from the manifests alone, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY common/Cargo.toml common/
COPY productpage/Cargo.toml productpage/
COPY details/Cargo.toml details/
COPY reviews/Cargo.toml reviews/
COPY ratings/Cargo.toml ratings/
COPY traces/Cargo.toml traces/
COPY mesh/Cargo.toml mesh/
COPY bench/ceiling/Cargo.toml bench/ceiling/
RUN for crate in common productpage details reviews ratings traces mesh bench/ceiling; do \
        mkdir -p "$crate/src" && touch "$crate/src/lib.rs"; \
    done \
 && mkdir -p src && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked --bin bookinfo

# Then the sources. Their files are older than the placeholder builds: touch them so cargo
# rebuilds the project's own crates.
COPY . .
RUN touch src/main.rs src/lib.rs common/src/lib.rs productpage/src/lib.rs details/src/lib.rs reviews/src/lib.rs ratings/src/lib.rs \
        traces/src/lib.rs mesh/src/lib.rs bench/ceiling/src/lib.rs \
 && cargo build --release --locked --bin bookinfo \
 && mkdir /out \
 && cp target/release/bookinfo /out/bookinfo \
 && ln -s bookinfo /out/curl

# glibc and nothing else; runs as the numeric non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
EXPOSE 9080
ENTRYPOINT ["/usr/local/bin/bookinfo"]
CMD ["serve", "productpage"]
