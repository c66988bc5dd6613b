"""Regenerate the Python package for the gRPC contract.

    uv run python protos/generate.py            # writes protos/src/tts/v1/*_pb2*.py[i]
    uv run python protos/generate.py --out DIR  # writes DIR/tts/v1/... instead

Runs grpcio-tools' bundled protoc with the mypy-protobuf plugins, so the
package gets messages (``tts_pb2``), gRPC stubs (``tts_pb2_grpc``) and type
stubs (``.pyi``) for both. Protos are compiled relative to ``protos/``, so
``tts/v1/tts.proto`` becomes the importable package ``tts.v1`` and the stubs
import their messages as ``from tts.v1 import tts_pb2``.

protoc writes into a temporary directory; a file under the output root is
replaced (atomically) only when its bytes differ, so a run on an up-to-date
tree touches nothing: Tilt's ``protos-codegen`` runs this at every ``tilt up``,
and a rewritten file would trigger a live update (restart) of every image.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

PROTOS_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = PROTOS_ROOT / "src"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """Every .proto of the contract, relative to ``protos/``."""
    return sorted(p.relative_to(PROTOS_ROOT) for p in (PROTOS_ROOT / "tts").rglob("*.proto"))


def _plugin(name: str) -> str:
    """Path of a protoc plugin installed next to the running interpreter."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise SystemExit(f"generate: {name} not found next to {sys.executable}; run `uv sync`")
    return str(candidate)


def generate(out: Path) -> list[Path]:
    """Compile every .proto into ``out``; return the generated files.

    Only files whose content changed are written (see the module docstring).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="protos-generate-") as scratch:
        fresh_root = Path(scratch)
        _protoc(fresh_root)
        generated: list[Path] = []
        for fresh in sorted(fresh_root.rglob("*")):
            if not (fresh.is_file() and fresh.name.endswith(GENERATED_SUFFIXES)):
                continue
            target = out / fresh.relative_to(fresh_root)
            _write_if_changed(target, fresh.read_bytes())
            generated.append(target)
    return generated


def _protoc(out: Path) -> None:
    from importlib.resources import files

    from grpc_tools import protoc

    well_known = str(files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTOS_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p) for p in proto_files()),
    ]
    status = protoc.main(args)
    if status != 0:
        raise SystemExit(f"generate: protoc failed with status {status}")


def _write_if_changed(target: Path, content: bytes) -> bool:
    """Replace ``target`` with ``content`` unless it already holds exactly that."""
    try:
        if target.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root")
    options = parser.parse_args(argv)
    for path in generate(options.out):
        print(path)


if __name__ == "__main__":
    main()
