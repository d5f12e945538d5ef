"""Regenerates the gRPC client code under src/caravan/ from ../../proto.

Run it (with the dev dependencies installed: `pip install -e '.[dev]'`)
after changing a contract; CI runs it and fails if the committed code
differs from what the contracts generate.

    python generate.py            # rewrite src/caravan/
    python generate.py --check    # exit 1 if src/caravan/ is stale
"""

from __future__ import annotations

import filecmp
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
OUT = HERE / "src" / "caravan"
# The load generator's echo service is an internal benchmark baseline, not
# part of the partner contract.
SKIP = {"caravan/loadgen/v1/echo.proto"}


def generate(into: pathlib.Path) -> None:
    files = sorted(
        str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto") if str(p.relative_to(PROTO)) not in SKIP
    )
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={into}",
            f"--pyi_out={into}",
            f"--grpc_python_out={into}",
            *files,
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    # Packages for every generated folder, so `import caravan.orders.v1` works.
    for folder in [into / "caravan", *(p for p in (into / "caravan").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


def differs(a: pathlib.Path, b: pathlib.Path) -> list[str]:
    compared = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out = [str(a / n) for n in compared.left_only + compared.right_only + compared.diff_files]
    for sub in compared.common_dirs:
        out += differs(a / sub, b / sub)
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        fresh = pathlib.Path(tmp) / "caravan"
        if "--check" in sys.argv:
            stale = differs(OUT, fresh) if OUT.exists() else [str(OUT)]
            if stale:
                print("generated code is stale; run `python generate.py`:", *stale, sep="\n  ")
                return 1
            print("generated code matches proto/")
            return 0
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.copytree(fresh, OUT, ignore=shutil.ignore_patterns("__pycache__"))
        print(f"generated {sum(1 for _ in OUT.rglob('*.py'))} modules under {OUT.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
