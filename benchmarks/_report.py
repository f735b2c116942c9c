"""What every results file under ``benchmarks/results/`` records: the command
that produced it, the machine it ran on, and the table itself."""

from __future__ import annotations

import platform
import shlex
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def command(script: str, env: str = "") -> str:
    """The command line that ran ``script``, with its arguments as given.

    ``env`` prefixes environment settings the run depended on, such as
    ``"SKOT_OTFLOW_AUTHORS=<their checkout> "``.
    """
    # Quoted where needed, so that an argument such as a JSON string can be
    # pasted back into a shell.
    return f"{env}python benchmarks/{script} {shlex.join(sys.argv[1:])}".rstrip()


def machine() -> str:
    """Processor, device, torch build and the threads torch uses."""
    device = f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU"
    return (
        f"{platform.processor() or platform.machine()}, {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def markdown_table(header: list[str], rows) -> str:
    """A markdown table: ``header``'s column names, then one line per row of
    already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write(path, text: str) -> Path:
    """Write ``text`` to ``path`` (a name alone goes under ``results/``)."""
    path = Path(path)
    if not path.parent.parts:
        path = RESULTS / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    print(f"written: {path}")
    return path
