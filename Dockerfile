# CPU image of Triad on Debian 12: the packages come from scripts/setup.sh (the same list CI
# and developers use), the build is a Release build, and the default command runs triadd on
# the bundled tiny models (deploy/triad.json). (A CUDA image builds the same tree against a CUDA
# LibTorch via CMAKE_PREFIX_PATH; see README "GPU".)
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAD_BUILD_TESTS=OFF \
 && cmake --build build -j "$(nproc)" --target triadd triad-infer triad-bench

FROM debian:12-slim
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends libtorch1.13 libopenblas0-openmp \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libpcre2-8-0 libicu72 libutf8proc2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/server/triadd /src/build/model/triad-infer \
     /src/build/model/triad-bench /usr/local/bin/
# deploy/triad.json names the bundled models relative to itself (../tests/data/...).
COPY deploy/triad.json /opt/triad/deploy/triad.json
COPY tests/data/models /opt/triad/tests/data/models
COPY tests/data/tokenizers /opt/triad/tests/data/tokenizers
USER nobody
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/triadd"]
CMD ["--config", "/opt/triad/deploy/triad.json", "--listen", "0.0.0.0:50051"]
