# CPU image of Triad on Debian 12: the packages come from scripts/setup.sh (the same list CI
# and developers use), the build is a Release build, and the default command runs the main
# job on the bundled tiny Llama checkpoint. (A CUDA image builds the same tree against a CUDA
# LibTorch via CMAKE_PREFIX_PATH; see README "GPU".)
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAD_BUILD_TESTS=OFF \
 && cmake --build build -j "$(nproc)" --target triad-infer triad-bench

FROM debian:12-slim
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends libtorch1.13 libopenblas0-openmp \
      libgrpc++1.51 libprotobuf32 libabsl20220623 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libpcre2-8-0 libicu72 libutf8proc2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/model/triad-infer /src/build/model/triad-bench /usr/local/bin/
COPY tests/data/models /opt/triad/models
USER nobody
ENTRYPOINT ["/usr/local/bin/triad-infer"]
CMD ["--model", "/opt/triad/models/llama-tiny", "--input-ids", "1,306,496,298,13", "--max-new-tokens", "16"]
