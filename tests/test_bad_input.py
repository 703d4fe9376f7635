"""Bad input, command by command: one line on stderr, exit status 2, nothing written.

Every case gives a ``gankit`` command (``gankit.cli.main`` in process) or an API call one mistake
and asserts what a user sees: exit status 2 (or ``gankit.UserError``), exactly one stderr line
``gankit: error: ...`` that names what was typed, no traceback, and not a byte written where it
should not be: each case lists the watched folders (its own temporary folder, the module's runs and
files, the data root, the classifier cache) before and after, so a half-made output file, a run
folder, a data set folder or a touched checkpoint all fail it. A few cases run
``python -m gankit.cli`` as a subprocess to prove that end to end.

The runs are built once per module: a 20-step ring run, a 3-step MNIST MLP run (with the cached
MNIST classifier), that run's export and damaged copies of a checkpoint and an export.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
ERROR = "gankit: error: "


# ------------------------------------------------------------------------------------------------
# fixtures: built once for the module
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory, data_root) -> SimpleNamespace:
    """The runs and files every case may read (and none may change)."""
    from gankit.cache import cache_dir
    from gankit.metrics.classifier import load_classifier

    base = tmp_path_factory.mktemp("bad_input")
    ring = gankit.train(
        "ring",
        [f"out={base / 'runs'}", "log.quiet=true", "train.steps=20", "log.checkpoint_every=10"],
    ).dir
    load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    over = [f"out={base / 'runs'}", "log.quiet=true", f"data.root={data_root}"]
    over += ["data.download=false", "model.width=16", "train.steps=3", "train.batch_size=16"]
    mnist = gankit.train("mnist-gan", [*over, "log.n_samples=16"]).dir
    export = gankit.export(mnist, base / "G.safetensors")

    damaged = base / "damaged"
    damaged.mkdir()
    ckpt = sorted((ring / "checkpoints").glob("step_*.pt"))[-1].read_bytes()
    (damaged / "truncated.pt").write_bytes(ckpt[: len(ckpt) // 2])
    (damaged / "random.pt").write_bytes(random.Random(0).randbytes(4096))
    raw = bytearray(export.read_bytes())
    (damaged / "truncated.safetensors").write_bytes(raw[: len(raw) // 2])
    (header,) = struct.unpack("<Q", raw[:8])  # data starts after the 8-byte length and the header
    start = 8 + header
    raw[start + (len(raw) - start) // 2] ^= 0x10  # one bit in the middle of the tensor data
    (damaged / "flipped.safetensors").write_bytes(raw)

    marked = torch.load(sorted((ring / "checkpoints").glob("step_*.pt"))[-1], weights_only=True)
    del marked["config"]  # the marker is there, a part is not
    torch.save(marked, damaged / "marked.pt")
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(export)), str(damaged / "no_config.safetensors"),
              metadata={"format": "gankit-generator-1", "meta": "{}"})  # fmt: skip

    configs = base / "configs"
    configs.mkdir()
    (configs / "latin1.yaml").write_bytes("train:\n  steps: 5  # caf\xe9\n".encode("latin-1"))
    (configs / "twice.yaml").write_text("train:\n  steps: 5\n  lr_g: 0.001\n  steps: 6\n")
    pngs = base / "three_pngs"
    pngs.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (80 * i, 40, 200)).save(pngs / f"{i}.png")

    return SimpleNamespace(
        base=base,
        ring=ring,
        mnist=mnist,
        export=export,
        ckpt_truncated=damaged / "truncated.pt",
        ckpt_random=damaged / "random.pt",
        export_truncated=damaged / "truncated.safetensors",
        export_flipped=damaged / "flipped.safetensors",
        ckpt_marked=damaged / "marked.pt",
        export_no_config=damaged / "no_config.safetensors",
        latin1=configs / "latin1.yaml",
        twice=configs / "twice.yaml",
        pngs=pngs,
        data=data_root,
        cache=cache_dir(),
    )


@pytest.fixture
def ctx(files, tmp_path, monkeypatch) -> dict[str, str]:
    """The names a case's argv may use, as text: the module's files and this case's own folder,
    which holds an existing file (``{file}``) and existing folders (``{folder}``, and folders
    named like the files a command wants: ``{folder_png}``, ``{folder_json}``, ...). The case
    runs in that folder, so a default output (samples.png, runs/) would land in it. CUDA is
    hidden, so the ``--device cuda`` cases mean the same on a machine that has it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "notes.txt").write_bytes(b"keep me\n")
    folders = {
        "folder": "folder",
        "folder_png": "taken.png",
        "folder_json": "taken.json",
        "folder_st": "taken.safetensors",
    }
    for name in folders.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "inside.txt").write_bytes(b"keep me too\n")
    paths = {k: v for k, v in vars(files).items() if isinstance(v, Path)}
    paths |= {k: tmp_path / v for k, v in folders.items()}
    paths |= {"tmp": tmp_path, "file": tmp_path / "notes.txt"}
    return {k: str(v) for k, v in paths.items()}


def _ring_copy(ctx: dict[str, str]) -> str:
    """A private copy of the ring run, for cases that would resume (and so change) it."""
    dst = Path(ctx["tmp"]) / "copy" / "ring"
    if not dst.exists():
        shutil.copytree(ctx["ring"], dst, symlinks=True)
    return str(dst)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def snapshot(*roots: str | Path) -> dict[str, tuple]:
    """Every entry under ``roots`` (not following links): kind, size and modification time.

    Equal snapshots before and after a case mean it created, removed and rewrote nothing there."""
    seen: dict[str, tuple] = {}
    for root in map(Path, roots):
        if not os.path.lexists(root):
            seen[str(root)] = ("missing",)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames, ""]:
                p = Path(dirpath, name)
                st = p.lstat()
                kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
                size = st.st_size if kind == "file" else 0
                seen[str(p)] = (kind, size, st.st_mtime_ns if kind != "dir" else 0)
            dirnames[:] = [d for d in dirnames if not Path(dirpath, d).is_symlink()]
    return seen


def watched(ctx: dict[str, str]) -> list[str]:
    """The folders no bad input may change."""
    return [ctx["tmp"], ctx["base"], ctx["data"], ctx["cache"]]


def assert_unchanged(before: dict[str, tuple], after: dict[str, tuple]) -> None:
    made = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (made or gone or changed), f"created {made}, removed {gone}, changed {changed}"


def one_error_line(err: str) -> str:
    """``err`` is exactly one line ``gankit: error: ...``, with no traceback or warning text."""
    assert err.count("\n") == 1 and err.endswith("\n"), f"want one stderr line, got {err!r}"
    assert err.startswith(ERROR), f"want {ERROR!r}..., got {err!r}"
    for noise in ("Traceback", "Warning:", "warnings.warn", 'File "'):
        assert noise not in err, f"{noise!r} in stderr: {err!r}"
    return err


@dataclass
class Case:
    """One bad command line: ``argv`` and the fragment its error must hold (both may name the
    ``ctx`` paths as ``{name}``); ``absent``: paths that must not exist afterwards; ``lacks``:
    text the message must not hold."""

    id: str
    argv: str
    fragment: str
    absent: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()

    def render(self, ctx: dict[str, str]) -> tuple[list[str], str, list[Path]]:
        if "{ring_copy}" in self.argv:
            ctx = {**ctx, "ring_copy": _ring_copy(ctx)}
        argv = [token.format(**ctx) for token in shlex.split(self.argv)]
        return argv, self.fragment.format(**ctx), [Path(a.format(**ctx)) for a in self.absent]


def C(id: str, argv: str, fragment: str, *absent: str, lacks: tuple[str, ...] = ()):
    return pytest.param(Case(id, argv, fragment, absent, lacks), id=id)


def run_bad(case: Case, ctx: dict[str, str], capsys) -> str:
    """Run ``case`` in process; check status 2, one error line, the fragment and no writes."""
    argv, fragment, absent = case.render(ctx)
    before = snapshot(*watched(ctx))
    capsys.readouterr()
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, f"gankit {shlex.join(argv)}: status {status}, stderr {err!r}"
    one_error_line(err)
    assert fragment in err, f"want {fragment!r} in {err!r}"
    for text in case.lacks:
        assert text not in err, f"{text!r} in {err!r}"
    for path in absent:
        assert not os.path.lexists(path), f"{path} was created"
    assert_unchanged(before, snapshot(*watched(ctx)))
    return err


# ------------------------------------------------------------------------------------------------
# the command line, in process
# ------------------------------------------------------------------------------------------------

ARGPARSE = [
    C(
        "sample-n-0",
        "sample {ring} --n 0",
        "gankit: error: argument --n: must be at least 1, got 0 (see gankit sample --help)",
        "{tmp}/samples.png",
    ),
    C(
        "train-unknown-flag",
        "train out={tmp} --stepz 5",
        "unrecognized arguments: --stepz (config keys are key=value",
        "{tmp}/ring",
    ),
    C("sample-unknown-flag", "sample {ring} --bogus", "unrecognized arguments: --bogus"),
    C(
        "sample-seed-text",
        "sample {ring} --seed abc",
        "argument --seed: want an integer, got 'abc'",
    ),
]

OUTPUT_PATHS = [
    C("sample-out-folder", "sample {ring} --out {folder_png}", "--out {folder_png} is a folder"),
    C(
        "sample-out-parent-file",
        "sample {ring} --out {file}/x.png",
        "{file} is a file, not a folder",
    ),
    C(
        "sample-out-proc",
        "sample {ring} --out /proc/gankit-test/x.png",
        "cannot write in /proc",
        "/proc/gankit-test",
    ),
    C("sample-out-suffix", "sample {ring} --out {tmp}/x.jpg", "must be a .png file, got 'x.jpg'"),
    C(
        "interpolate-out-folder",
        "interpolate {mnist} --from 0 --to 1 --out {folder_png}",
        "{folder_png} is a folder",
    ),
    C(
        "interpolate-out-proc",
        "interpolate {mnist} --from 0 --to 1 --out /proc/x.png",
        "cannot write in /proc",
    ),
    C(
        "interpolate-out-parent-file",
        "interpolate {mnist} --from 0 --to 1 --out {file}/sub/i.png",
        "{file} is a file, not a folder",
    ),
    C(
        "arithmetic-out-folder",
        "arithmetic {mnist} --a 0 --b 1 --c 2 --out {folder_png}",
        "{folder_png} is a folder",
    ),
    C(
        "arithmetic-out-suffix",
        "arithmetic {mnist} --a 0 --b 1 --c 2 --out {tmp}/a.gif",
        "must be a .png file, got 'a.gif'",
        "{tmp}/a.gif",
    ),
    C(
        "export-out-folder",
        "export {mnist} --out {folder_st}",
        "{folder_st} is a folder",
    ),
    C(
        "export-out-suffix",
        "export {mnist} --out {tmp}/G.pt",
        "must be a .safetensors file, got 'G.pt'",
        "{tmp}/G.pt",
    ),
    C(
        "export-out-proc",
        "export {mnist} --out /proc/G.safetensors",
        "cannot write in /proc",
    ),
    C(
        "export-out-over-file",
        "export {mnist} --out {file}/G.safetensors",
        "{file} is a file, not a folder",
    ),
    C(
        "eval-out-folder",
        "eval {ring} --metrics modes --out {folder_json}",
        "{folder_json} is a folder",
        "{ring}/eval",
    ),
    C(
        "eval-out-suffix",
        "eval {ring} --metrics modes --out {tmp}/r.txt",
        "must be a .json file, got 'r.txt'",
        "{tmp}/r.txt",
        "{ring}/eval",
    ),
    C(
        "eval-out-parent-file",
        "eval {ring} --metrics modes --out {file}/r.json",
        "{file} is a file, not a folder",
        "{ring}/eval",
    ),
    C(
        "edit-out-file",
        "edit {mnist} --target 3 --out {file}",
        "--out {file} is a file, not a folder",
    ),
    C(
        "edit-out-parent-file",
        "edit {mnist} --target 3 --out {file}/e",
        "{file} is a file, not a folder",
    ),
    C(
        "edit-out-proc",
        "edit {mnist} --target 3 --out /proc/gankit-test/e",
        "cannot write in /proc",
        "/proc/gankit-test",
    ),
    C("train-out-file", "train out={file} train.steps=2", "{file} is a file, not a folder"),
    C(
        "train-out-proc",
        "train out=/proc/gankit-test train.steps=2",
        "cannot write in /proc",
        "/proc/gankit-test",
    ),
]

DEVICES = [
    C("sample-cuda", "sample {ring} --device cuda", "CUDA is not available", "{tmp}/samples.png"),
    C(
        "sample-tpu",
        "sample {ring} --device tpu --out {tmp}/s.png",
        "device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'",
        "{tmp}/s.png",
    ),
    C(
        "eval-cuda",
        "eval {ring} --metrics modes --device cuda",
        "CUDA is not available",
        "{ring}/eval",
    ),
    C(
        "eval-tpu",
        "eval {ring} --metrics modes --device tpu",
        "must be auto, cpu, cuda, cuda:N or mps, got 'tpu'",
        "{ring}/eval",
    ),
    C(
        "edit-cuda",
        "edit {mnist} --target 3 --device cuda --out {tmp}/e",
        "CUDA is not available",
        "{tmp}/e",
    ),
    C(
        "interpolate-tpu",
        "interpolate {mnist} --from 0 --to 1 --device tpu --out {tmp}/i.png",
        "must be auto, cpu, cuda, cuda:N or mps, got 'tpu'",
        "{tmp}/i.png",
        "{tmp}/i.gif",
    ),
    C(
        "interpolate-cuda",
        "interpolate {mnist} --from 0 --to 1 --device cuda --out {tmp}/i.png",
        "CUDA is not available",
        "{tmp}/i.png",
    ),
    C(
        "classifier-train-cuda",
        "classifier train --data mnist --device cuda --force --data-dir {data}",
        "CUDA is not available",
    ),
    C(
        "train-cuda",
        "train out={tmp} device=cuda train.steps=2",
        "CUDA is not available",
        "{tmp}/ring",
    ),
    C(
        "train-tpu",
        "train out={tmp} --device tpu train.steps=2",
        "device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'",
        "{tmp}/ring",
    ),
]

SIZES = [
    C(
        "sample-out-name-too-long",
        "sample {ring} --out {tmp}/" + "x" * 300 + ".png",
        "is longer than 255 bytes",
    ),
    C(
        "train-name-too-long",
        "train out={tmp}/runs name=" + "r" * 300,
        "is longer than 255 bytes",
        "{tmp}/runs",
    ),  # fmt: skip
    C(
        "eval-energy-n-huge",
        "eval {ring} --metrics energy --n 3000000000",
        "n=3000000000 samples: about",
    ),
    C(
        "train-seed-negative",
        "train out={tmp} seed=-1",
        "seed must be in 0..4294967295",
        "{tmp}/ring",
    ),
    C(
        "sample-n-huge",
        "sample {ring} --n 2000000000 --out {tmp}/s.png",
        "--n 2000000000: about",
        "{tmp}/s.png",
    ),
    C(
        "interpolate-steps-huge",
        "interpolate {mnist} --from 0 --to 1 --steps 2000000000 --out {tmp}/i.png",
        "--steps 2000000000: about",
        "{tmp}/i.png",
        "{tmp}/i.gif",
    ),
    C(
        "train-batch-huge",
        "train out={tmp} train.batch_size=2000000000 train.steps=2",
        "train.batch_size=2000000000",
        "{tmp}/ring",
    ),
    C("eval-n-0", "eval {ring} --metrics modes --n 0", "argument --n: must be at least 2, got 0"),
    C(
        "eval-batch-0",
        "eval {ring} --metrics modes --batch-size 0",
        "argument --batch-size: must be at least 1, got 0",
    ),
    C(
        "edit-n-0",
        "edit {mnist} --target 3 --n 0 --out {tmp}/e",
        "argument --n: must be at least 1, got 0",
        "{tmp}/e",
    ),
    C(
        "interpolate-n-0",
        "interpolate {mnist} --from 0 --to 1 --n 0",
        "argument --n: must be at least 1, got 0",
    ),
    C(
        "interpolate-steps-1",
        "interpolate {mnist} --from 0 --to 1 --steps 1",
        "argument --steps: must be at least 2, got 1",
    ),
]

CONFIG = [
    C(
        "config-not-utf8",
        "train --config {latin1} out={tmp}",
        "{latin1} is not UTF-8",
        "{tmp}/ring",
    ),
    C(
        "config-key-twice",
        "train --config {twice} out={tmp}",
        "gives the key train.steps twice",
        "{tmp}/ring",
    ),
    C("config-folder", "train --config {folder} out={tmp}", "{folder} is a folder", "{tmp}/ring"),
    C("lr-inf", "train out={tmp} train.lr_g=inf", "train.lr_g", "{tmp}/ring"),
    C(
        "clip-negative",
        "train --config ring-wgan out={tmp} variant.clip=-1",
        "variant.clip must be positive, got -1.0",
        "{tmp}/ring-wgan",
    ),
    C(
        "gp-weight-negative",
        "train --config ring-wgan-gp out={tmp} variant.gp_weight=-1",
        "variant.gp_weight must be 0 (off) or positive",
        "{tmp}/ring-wgan-gp",
    ),
    C(
        "margin-negative",
        "train --config ring-ebgan out={tmp} variant.margin=-1",
        "variant.margin must be positive",
        "{tmp}/ring-ebgan",
    ),
    C("old-key", "train out={tmp} train.gp_weight=1", "train.gp_weight is now variant.gp_weight"),
    C(
        "option-of-another-variant",
        "train out={tmp} train.variant=lsgan variant.clip=0.1",
        "variant lsgan has no options; drop variant.clip",
        "{tmp}/ring",
    ),
    C(
        "resume-unknown-key",
        "train --resume {ring_copy} trian.steps=5",
        "unknown config key trian;",
    ),
    C("resume-seed", "train --resume {ring_copy} seed=3", "cannot change seed"),
    C("resume-fewer-steps", "train --resume {ring_copy} train.steps=5", "beyond train.steps"),
    C("resume-with-config", "train --resume {ring_copy} --config ring", "drop --config"),
]

VALUES = [
    C(
        "edit-stop-prob",
        "edit {mnist} --target 3 --stop-prob 1.5 --out {tmp}/e",
        "argument --stop-prob: must be in (0, 1], got 1.5",
        "{tmp}/e",
    ),
    C(
        "edit-lr-inf",
        "edit {mnist} --target 3 --lr inf --out {tmp}/e",
        "argument --lr: want a finite number, got 'inf'",
        "{tmp}/e",
    ),
    C("sample-psi-2", "sample {mnist} --psi 2", "argument --psi: must be in [0, 1], got 2"),
    C("sample-truncation-0", "sample {mnist} --truncation 0", "argument --truncation: must be in"),
    C(
        "edit-target-10",
        "edit {mnist} --target 10 --out {tmp}/e",
        "--target must be in 0..9, got 10",
        "{tmp}/e",
    ),
    C(
        "arithmetic-empty",
        'arithmetic {mnist} --a "" --b 0 --c 1 --out {tmp}/a.png',
        "--a is empty",
        "{tmp}/a.png",
    ),
    C(
        "arithmetic-per-class-over-pool",
        "arithmetic {mnist} --a class=3 --b 0 --c 1 --per-class 50 --pool 20 --out {tmp}/a.png",
        "--per-class 50 is more than --pool 20",
        "{tmp}/a.png",
    ),
]

EVAL = [
    C(
        "eval-coverage-ring",
        "eval {ring} --metrics coverage",
        "coverage needs an image generator",
        "{ring}/eval",
        lacks=("class_coverage",),
    ),
    C("eval-unknown-metric", "eval {ring} --metrics fid,nope", "unknown metric 'nope'"),
    C("eval-fid-ring", "eval {ring} --metrics fid", "fid needs an image generator", "{ring}/eval"),
]

DAMAGED = [
    C(
        "sample-truncated-ckpt",
        "sample {ckpt_truncated} --out {tmp}/s.png",
        "{ckpt_truncated} is not a readable gankit checkpoint",
        "{tmp}/s.png",
    ),
    C(
        "sample-random-ckpt",
        "sample {ckpt_random} --out {tmp}/s.png",
        "{ckpt_random} is not a readable gankit checkpoint",
        "{tmp}/s.png",
    ),
    C(
        "sample-truncated-export",
        "sample {export_truncated} --out {tmp}/s.png",
        "{export_truncated} is not a readable safetensors file",
        "{tmp}/s.png",
    ),
    C(
        "sample-flipped-export",
        "sample {export_flipped} --out {tmp}/s.png",
        "{export_flipped} is damaged",
        "{tmp}/s.png",
    ),
    C("sample-missing", "sample {tmp}/nope --out {tmp}/s.png", "{tmp}/nope does not exist"),
    C(
        "sample-marked-ckpt-without-config",
        "sample {ckpt_marked} --out {tmp}/s.png",
        "{ckpt_marked} is a damaged gankit checkpoint (no 'config')",
        "{tmp}/s.png",
    ),
    C(
        "sample-export-without-config",
        "sample {export_no_config} --out {tmp}/s.png",
        "{export_no_config} is a damaged gankit export (KeyError",
        "{tmp}/s.png",
    ),
]

DATA = [
    C(
        "folder-too-few-images",
        "train out={tmp} data.name=folder data.path={pngs} data.size=16 train.batch_size=8",
        "lower train.batch_size",
        "{tmp}/ring",
    ),
    C(
        "data-dir-typo",
        "train --config mnist-gan --data-dir {tmp}/typo out={tmp}",
        "{tmp}/typo does not exist",
        "{tmp}/typo",
        "{tmp}/mnist-gan",
    ),
]

CLI_CASES = [*ARGPARSE, *OUTPUT_PATHS, *DEVICES, *SIZES, *CONFIG, *VALUES, *EVAL, *DAMAGED, *DATA]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_bad_input(case: Case, ctx, capsys):
    run_bad(case, ctx, capsys)


# ------------------------------------------------------------------------------------------------
# the Python API
# ------------------------------------------------------------------------------------------------


def A(id: str, call, fragment: str):
    """``call(paths)`` must raise ``UserError`` holding ``fragment`` (formatted with ``ctx``)."""
    return pytest.param(call, fragment, id=id)


def P(ctx: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(**{k: Path(v) for k, v in ctx.items()})


API_CASES = [
    A("train-overrides-int", lambda p: gankit.train("ring", 5), "overrides must be"),
    A("train-config-int", lambda p: gankit.train(42), "got int"),
    A(
        "load-config-no-value",
        lambda p: gankit.load_config("ring", ["train.steps"]),
        "'train.steps'",
    ),
    A("resume-missing", lambda p: gankit.resume(p.tmp / "nope"), "{tmp}/nope"),
    A("export-suffix", lambda p: gankit.export(p.ring, p.tmp / "x.pt"), "must be a .safetensors"),
    A("evaluate-unknown", lambda p: gankit.evaluate(p.ring, "fid,nope"), "unknown metric 'nope'"),
    A("load-missing", lambda p: gankit.load_generator(p.tmp / "missing"), "{tmp}/missing"),
    A("load-cuda", lambda p: gankit.load_generator(p.ring, device="cuda"), "CUDA is not available"),
    A("load-banana", lambda p: gankit.load_generator(p.ring, device="banana"), "'banana'"),
    A(
        "load-flipped-export",
        lambda p: gankit.load_generator(p.export_flipped),
        "{export_flipped} is damaged",
    ),
    A(
        "load-truncated-export",
        lambda p: gankit.load_generator(p.export_truncated),
        "{export_truncated} is not a readable safetensors file",
    ),
    A(
        "load-random-ckpt",
        lambda p: gankit.load_generator(p.ckpt_random),
        "{ckpt_random} is not a readable gankit checkpoint",
    ),
]


@pytest.mark.parametrize(("call", "fragment"), API_CASES)
def test_api_bad_input(call, fragment, ctx):
    before = snapshot(*watched(ctx))
    with pytest.raises(gankit.UserError) as e:
        call(P(ctx))
    message = str(e.value)
    assert "\n" not in message, message
    assert fragment.format(**ctx) in message, f"want {fragment.format(**ctx)!r} in {message!r}"
    assert_unchanged(before, snapshot(*watched(ctx)))


# ------------------------------------------------------------------------------------------------
# end to end: a real process, its real stderr
# ------------------------------------------------------------------------------------------------

SUBPROCESS_CASES = [
    C(
        "proc-random-ckpt",
        "sample {ckpt_random} --out {tmp}/s.png",
        "is not a readable gankit checkpoint",
        "{tmp}/s.png",
    ),
    C(
        "proc-eval-coverage-ring",
        "eval {ring} --metrics coverage",
        "coverage needs an image generator",
        "{ring}/eval",
    ),
    C(
        "proc-clip-negative",
        "train --config ring-wgan out={tmp} variant.clip=-1",
        "variant.clip must be positive",
        "{tmp}/ring-wgan",
    ),
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_subprocess_bad_input(case: Case, ctx):
    argv, fragment, absent = case.render(ctx)
    before = snapshot(*watched(ctx))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "gankit.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ctx["tmp"],
        env=env,
        timeout=180,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    one_error_line(proc.stderr)
    assert "warn" not in proc.stderr.lower(), proc.stderr
    assert fragment in proc.stderr, f"want {fragment!r} in {proc.stderr!r}"
    assert proc.stdout == "", proc.stdout
    for path in absent:
        assert not os.path.lexists(path), f"{path} was created"
    assert_unchanged(before, snapshot(*watched(ctx)))


# ------------------------------------------------------------------------------------------------
# what must work
# ------------------------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert re.fullmatch(
        rf"gankit {re.escape(gankit.__version__)} \(torch \S+, Python \d+\.\d+\.\d+\S*\)\n", out
    ), out


def test_train_overrides_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "train.steps=5", "--quiet", "name=x", f"out={tmp_path}"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # not ring/ nor runs/
    assert "train:\n" in (tmp_path / "x" / "config.yaml").read_text()
    assert gankit.load_config(str(tmp_path / "x" / "config.yaml")).train.steps == 5
    assert "5 steps in" in capsys.readouterr().out


def test_enough_cases():
    assert len(CLI_CASES) + len(API_CASES) + len(SUBPROCESS_CASES) >= 40


def test_snapshot_sees_every_write(tmp_path):
    """The no-write check itself: a new file, a rewritten one, a removed one, a new folder."""
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"2")
    before = snapshot(tmp_path)
    assert_unchanged(before, snapshot(tmp_path))
    (tmp_path / "c").write_bytes(b"")
    (tmp_path / "d").mkdir()
    os.utime(tmp_path / "a", ns=(0, 0))  # same bytes, another mtime
    (tmp_path / "b").unlink()
    with pytest.raises(AssertionError, match="created .*c.*d.*removed .*b.*changed .*a"):
        assert_unchanged(before, snapshot(tmp_path))
