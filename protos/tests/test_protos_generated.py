"""The committed generated package matches the .proto (not stale) and imports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tts.v1 import tts_pb2, tts_pb2_grpc

PROTOS = Path(__file__).resolve().parents[1]
COMMITTED = PROTOS / "src"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("protos_generate", PROTOS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    generator = _load_generator()
    fresh = generator.generate(tmp_path)
    assert fresh, "the generator produced nothing"
    fresh_names = {p.relative_to(tmp_path) for p in fresh}
    committed_names = {
        p.relative_to(COMMITTED)
        for p in COMMITTED.rglob("*")
        if p.is_file() and p.name.endswith(generator.GENERATED_SUFFIXES)
    }
    assert committed_names == fresh_names, "generated file set differs; run protos/generate.py"
    stale = [
        str(name)
        for name in sorted(fresh_names)
        if (COMMITTED / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    assert not stale, f"stale generated code {stale}: run `uv run python protos/generate.py`"


def test_generated_package_imports_as_tts_v1() -> None:
    service = tts_pb2.DESCRIPTOR.services_by_name["TextToSpeech"]
    assert {m.name for m in service.methods} == {"Synthesize", "StreamSynthesize", "ListVoices"}
    assert hasattr(tts_pb2_grpc, "TextToSpeechStub")
    assert hasattr(tts_pb2_grpc, "add_TextToSpeechServicer_to_server")
    assert tts_pb2_grpc.tts_dot_v1_dot_tts__pb2 is tts_pb2
    request = tts_pb2.SynthesizeRequest(text="Hello.", speaking_rate=1.5)
    assert tts_pb2.SynthesizeRequest.FromString(request.SerializeToString()) == request


def test_a_second_run_touches_nothing_and_a_changed_file_alone_is_rewritten(
    tmp_path: Path,
) -> None:
    """Tilt's protos-codegen runs this at every `tilt up`: rewriting unchanged files
    would live-update (restart) every image."""
    generator = _load_generator()
    first = generator.generate(tmp_path)

    def stats() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first}

    before = stats()
    assert generator.generate(tmp_path) == first
    assert stats() == before
    damaged = first[0]
    fresh = damaged.read_bytes()
    damaged.write_bytes(b"# edited by hand\n")
    before = stats()
    generator.generate(tmp_path)
    after = stats()
    assert damaged.read_bytes() == fresh
    assert [p for p in first if after[p] != before[p]] == [damaged]
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no temporary left over
