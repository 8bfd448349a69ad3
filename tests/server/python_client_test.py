#!/usr/bin/python3
"""A Python client (Debian's python3-grpcio, message classes generated from our .proto by the
system protoc at test time) against a real triadd: unary equals stream, greedy is deterministic,
health serves, bad input gets INVALID_ARGUMENT naming the field. Label integration.

Usage: python_client_test.py TRIADD PROTO_DIR DATA_DIR
"""
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def main():
    triadd, proto_dir, data = sys.argv[1:4]
    work = tempfile.mkdtemp()
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={work}",
                    "triad/v1/triad.proto", "grpc/health/v1/health.proto"], check=True)
    sys.path.insert(0, work)
    import grpc
    from triad.v1 import triad_pb2 as pb
    # The generated grpc/health/v1 package would shadow grpcio's own `grpc`: load it by path.
    spec = importlib.util.spec_from_file_location(
        "health_pb2", os.path.join(work, "grpc", "health", "v1", "health_pb2.py"))
    health_pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(health_pb2)

    port = 20000 + random.randrange(30000)
    config = {"listen": f"127.0.0.1:{port}", "metrics_port": 0, "threads": 1,
              "models": [{"name": "t5", "path": f"{data}/models/t5-tiny",
                          "tokenizer": f"{data}/tokenizers/t5-tiny"}]}
    with open(os.path.join(work, "triad.json"), "w") as f:
        json.dump(config, f)
    server = subprocess.Popen([triadd, "--config", os.path.join(work, "triad.json")])
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")

        def rpc(name, request, response_cls, stream=False):
            path = ("/grpc.health.v1.Health/" if name == "Check" else "/triad.v1.Triad/") + name
            kind = channel.unary_stream if stream else channel.unary_unary
            return kind(path, request_serializer=type(request).SerializeToString,
                        response_deserializer=response_cls.FromString)(request, timeout=30)

        # Connect explicitly (no reconnect backoff after a too-early attempt), then wait for
        # the models to load: health is NOT_SERVING until then.
        grpc.channel_ready_future(channel).result(timeout=60)
        deadline = time.monotonic() + 60
        while rpc("Check", health_pb2.HealthCheckRequest(), health_pb2.HealthCheckResponse).status != 1:
            assert time.monotonic() < deadline, "triadd never became healthy"
            time.sleep(0.05)

        request = pb.GenerateRequest(model="t5", text="translate: the license",
                                     sampling=pb.SamplingParameters(temperature=0, max_new_tokens=10))
        unary = rpc("Generate", request, pb.GenerateResponse)
        streamed = list(rpc("GenerateStream", request, pb.GenerateStreamResponse, stream=True))
        text = "".join(m.text_delta for m in streamed)
        ids = [i for m in streamed for i in m.token_ids]
        assert text == unary.text, (text, unary.text)
        assert ids == list(unary.token_ids), (ids, list(unary.token_ids))
        assert streamed[-1].done and streamed[-1].finish_reason == unary.finish_reason
        again = rpc("Generate", request, pb.GenerateResponse)
        assert list(again.token_ids) == list(unary.token_ids), "greedy must be deterministic"

        # Classification from the same resident T5: mnli label scoring, probabilities sum to 1.
        classify = pb.ClassifyRequest(
            model="t5", task=pb.CLASSIFY_TASK_ENTAILMENT,
            item=pb.ClassifyItem(premise="the license grants rights", hypothesis="rights exist"))
        result = rpc("Classify", classify, pb.ClassifyResponse).result
        assert sorted(l.label for l in result.labels) == ["contradiction", "entailment", "neutral"]
        assert abs(sum(l.probability for l in result.labels) - 1) < 1e-5, result
        assert result.label == result.labels[0].label
        try:
            rpc("Classify", pb.ClassifyRequest(model="t5", task=pb.CLASSIFY_TASK_ENTAILMENT,
                                               item=pb.ClassifyItem(premise="p")),
                pb.ClassifyResponse)
            raise AssertionError("a missing hypothesis was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "item.hypothesis" in e.details(), e.details()

        bad = pb.GenerateRequest(model="t5", text="x", sampling=pb.SamplingParameters(temperature=-1))
        try:
            rpc("Generate", bad, pb.GenerateResponse)
            raise AssertionError("temperature -1 was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "sampling.temperature" in e.details(), e.details()

        # Bytes that are not UTF-8 in a string field (a Python str cannot hold them, so the
        # request goes out pre-encoded): the stream fails with INVALID_ARGUMENT naming the field.
        encoded = request.SerializeToString().replace(b"the license", b"the \xff\xfeicense")
        raw = channel.unary_stream("/triad.v1.Triad/GenerateStream",
                                   response_deserializer=pb.GenerateStreamResponse.FromString)
        try:
            list(raw(encoded, timeout=30))
            raise AssertionError("invalid UTF-8 was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "text is not valid UTF-8" in e.details(), e.details()
        print("python_client_test: ok")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, "triadd did not exit 0 after SIGTERM"


if __name__ == "__main__":
    main()
