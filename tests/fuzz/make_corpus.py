#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/) from the test data.

Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py (Debian's python3-protobuf). Seeds are small on purpose (libFuzzer
mutates short inputs far faster): tokenizer.json files shrink to their first vocabulary
entries and the merges among them, the T5 .model keeps its first pieces, and T5's compiled
charsmap (~240 KB) appears only in the precompiled target's seeds. Inputs that
fuzzing finds worth keeping (crash reproducers, new coverage) are added beside the seeds.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def shrink_tokenizer_json(path, keep):
    j = json.loads(path.read_text())
    # The ~240 KB compiled charsmap has a target of its own (precompiled).
    for normalizer in [j.get("normalizer") or {}] + (j.get("normalizer") or {}).get("normalizers", []):
        if normalizer.get("type") == "Precompiled":
            normalizer["precompiled_charsmap"] = ""
    model = j["model"]
    if model["type"] == "Unigram":
        model["vocab"] = model["vocab"][:keep]
        if model.get("unk_id") is not None and model["unk_id"] >= keep:
            model["unk_id"] = 0
        limit = keep
    else:
        model["vocab"] = {k: v for k, v in model["vocab"].items() if v < keep}
        vocab = model["vocab"]
        merges = []
        for m in model.get("merges", []):
            a, b = m if isinstance(m, list) else m.split(" ", 1)
            if a in vocab and b in vocab and a + b in vocab:
                merges.append(m)
        model["merges"] = merges
        limit = keep
    j["added_tokens"] = [t for t in j["added_tokens"] if t["id"] < limit]
    post = j.get("post_processor")
    if post and post.get("type") == "TemplateProcessing":
        for token in post.get("special_tokens", {}).values():
            token["ids"] = [i if i < limit else 0 for i in token["ids"]]
    return json.dumps(j, ensure_ascii=False, separators=(",", ":"))


def main():
    texts = ["Hello world", "naïve café — 東京 🤗", " leading  spaces\tand\nnewlines ",
             "<s>special</s> <unk>", "1234567890 ,.!?", ""]
    for selector in range(7):
        for i, text in enumerate(texts):
            write("tokenizer_encode", f"t{selector}_{i}", bytes([selector, i % 2]) + text.encode())

    tokenizers = DATA / "tokenizers"
    for name, keep in [("gpt1-tiny", 120), ("llama-tiny", 300), ("t5-tiny", 120)]:
        write("tokenizer_json", name + ".json",
              shrink_tokenizer_json(tokenizers / name / "tokenizer.json", keep))

    write("sentencepiece", "llama-tiny.model",
          bytes([0]) + (tokenizers / "llama-tiny" / "tokenizer.model").read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        proto = ROOT / "model" / "tokenizer" / "sentencepiece_model.proto"
        subprocess.run(["protoc", f"-I{ROOT}", f"--python_out={tmp}", str(proto)], check=True)
        sys.path.insert(0, tmp)
        from model.tokenizer import sentencepiece_model_pb2 as spm  # noqa: E402
        m = spm.ModelProto()
        m.ParseFromString((tokenizers / "t5-tiny" / "spiece.model").read_bytes())
        del m.pieces[200:]
        charsmap = m.normalizer_spec.precompiled_charsmap
        m.normalizer_spec.precompiled_charsmap = b""
        write("sentencepiece", "t5-tiny-200.model", bytes([2]) + m.SerializeToString())
    raw = "ＡＢＣ ｶﾀｶﾅ ﬁ Ⅻ plain e\u0301 \u00a0x".encode()
    write("precompiled", "t5-charsmap", len(raw).to_bytes(2, "little") + charsmap + raw)

    header = {"__metadata__": {"format": "pt"},
              "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [24, 30]},
              "e": {"dtype": "I64", "shape": [0], "data_offsets": [30, 30]}}
    write("safetensors_header", "valid", (30).to_bytes(2, "little") + json.dumps(header).encode())
    write("safetensors_header", "empty", (0).to_bytes(2, "little") + b"{}")

    for config in sorted((ROOT / "deploy").glob("*.json")):
        write("server_config", config.name, config.read_bytes())

    # classify: model, task, form, then premise, hypothesis, text_a, text_b, context, text,
    # question and choices split at 0x1F (see classify_fuzz.cc).
    items = {
        0: ["A man sleeps.", "A person rests."],
        1: ["", "", "The cat sat.", "A cat was sitting."],
        2: ["", "", "", "", "He opened the door", "", "", "and left.", "and flew away."],
        3: ["", "", "", "", "", "What a great movie!"],
    }
    for model in range(5):
        for task, fields in items.items():
            for form in (0, 1):
                body = "\x1f".join(fields).encode()
                write("classify", f"m{model}_t{task}_f{form}", bytes([model, task, form]) + body)

    # sampler: vocab, temperature, top_k, top_p, min_p, typical_p, repetition, presence,
    # frequency, min_new_tokens, seed, top_logprobs, stops, scale, logits... (sampler_fuzz.cc)
    for i, head in enumerate([[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 5, 0, 0],
                              [16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 5, 0, 0],
                              [40, 2, 10, 1, 1, 1, 1, 1, 1, 2, 9, 21, 2, 5, 9, 2]]):
        write("sampler", f"seed_{i}", bytes(head) + bytes(range(60, 200, 3)))

    # wire: a type byte (0 Generate, 1 Classify, 2 ClassifyBatch, 3 Tokenize, 4 Detokenize,
    # 5 GetModel), then the encoded request, built by hand: field key, length, bytes.
    def field(number, payload):
        key = bytes([number << 3 | 2])
        return key + bytes([len(payload)]) + payload
    sampling = field(11, b"\n") + bytes([14 << 3, 4])  # stop "\n", num_beams 4
    write("wire", "generate", bytes([0]) + field(1, b"llama") + field(2, "héllo".encode())
          + field(4, sampling))
    write("wire", "tokenize", bytes([3]) + field(1, b"t5") + field(2, "wörld".encode()))
    write("wire", "get_model", bytes([5]) + field(1, b"gpt1"))

    for folder in sorted((DATA / "models").iterdir()):
        config = folder / "config.json"
        if config.exists():
            write("model_config", folder.name + ".json", config.read_bytes())


if __name__ == "__main__":
    main()
