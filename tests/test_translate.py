"""Translating images with a CycleGAN run (Zhu et al. 2017): ``gankit.load_translator``, the
``Translator``, translator exports, ``write_translations`` and ``gankit translate``.

One tiny usps -> mnist CycleGAN run (2 steps, 4-channel generators), one tiny G/D run and the
CycleGAN run's export are built once for the module; every case reads them and none changes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import gankit
from gankit.api import tensors_sha256
from gankit.cli import main
from gankit.control.translate import Translator, grid_rows, to_pil, write_translations
from gankit.nets.resnet import ResnetGenerator
from gankit.training import checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
ERROR = "gankit: error: "
SHAPE = (1, 28, 28)
NGF, N_BLOCKS = 4, 1  # the tiny run's generator size (its n_down is the default 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("translate")
    cg = gankit.train(
        "usps-mnist-cyclegan",
        [
            f"data.root={data_root}",
            "data.download=false",
            "train.steps=2",
            "train.batch_size=4",
            f"variant.ngf={NGF}",
            f"variant.n_blocks={N_BLOCKS}",
            "variant.ndf=8",
            "log.every=1",
            "log.quiet=true",
            f"out={base / 'runs'}",
            "name=cg",
        ],
    ).dir
    gd = gankit.train(None, ["train.steps=2", "log.quiet=true", f"out={base / 'runs'}", "name=gd"])
    pngs = base / "pngs"  # what a user's folder holds: sizes, modes, suffixes and subfolders
    (pngs / "sub" / "deeper").mkdir(parents=True)
    Image.new("RGB", (20, 24), (200, 30, 90)).save(pngs / "a.png")
    Image.new("L", (28, 28), 40).save(pngs / "sub" / "b.jpg")
    Image.new("L", (56, 56), 250).save(pngs / "sub" / "deeper" / "c.PNG")
    return SimpleNamespace(
        base=base,
        cg=cg,
        ckpt=checkpoint.latest(cg),
        export=gankit.export(cg, base / "cg.safetensors"),
        gd=gd.dir,
        pngs=pngs,
        data=data_root,
    )


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith(ERROR), f"want one error line, got {err!r}"
    assert "Traceback" not in err and "Warning" not in err, err
    return err


# ------------------------------------------------------------------------------------------------
# the Python API
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction,player", [("AtoB", "G_AB"), ("BtoA", "G_BA")])
def test_translator_is_the_runs_generator(runs, direction, player):
    ck = torch.load(runs.ckpt, weights_only=True)
    net = ResnetGenerator(1, 1, NGF, N_BLOCKS)
    net.load_state_dict(ck["nets"][player])
    tr = gankit.load_translator(runs.cg, direction)
    assert isinstance(tr, gankit.Translator)
    assert (tr.direction, tr.shape, tr.step) == (direction, SHAPE, 2)
    x = images(5)
    y = tr(x)
    assert y.dtype == torch.float32 and y.device.type == "cpu" and y.shape == x.shape
    with torch.no_grad():
        torch.testing.assert_close(y, net.eval()(x), rtol=0, atol=0)
    assert y.abs().max() <= 1


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_run_checkpoint_and_export_translate_alike(runs, direction):
    x = images(6, seed=1)
    ys = [gankit.load_translator(p, direction)(x) for p in (runs.cg, runs.ckpt, runs.export)]
    assert ys[1].equal(ys[0]) and ys[2].equal(ys[0])
    assert gankit.load_translator(runs.export, direction).step is None
    other = "BtoA" if direction == "AtoB" else "AtoB"
    assert not ys[0].equal(gankit.load_translator(runs.cg, other)(x))  # two different nets


def test_translator_export_holds_every_translator(runs, tmp_path):
    with safe_open(str(runs.export), framework="pt") as f:
        md = f.metadata()
    meta = json.loads(md["meta"])
    assert md["format"] == "gankit-translator-1"
    assert meta["players"] == ["G_AB", "G_BA"] and meta["kind"] == "pair"
    assert (
        meta["shape"] == list(SHAPE) and json.loads(md["config"])["train"]["variant"] == "cyclegan"
    )
    state = load_file(str(runs.export))
    assert {k.split(".", 1)[0] for k in state} == {"G_AB", "G_BA"}
    assert md["sha256"] == tensors_sha256(state)
    ck = torch.load(runs.ckpt, weights_only=True)
    for player in ("G_AB", "G_BA"):
        for name, t in ck["nets"][player].items():
            assert state[f"{player}.{name}"].equal(t)
    again = gankit.export(runs.export, tmp_path / "again.safetensors")  # an export re-exports
    assert load_file(str(again)).keys() == state.keys()


def test_generator_exports_are_unchanged(runs, tmp_path):
    out = gankit.export(runs.gd, tmp_path / "G.safetensors")
    with safe_open(str(out), framework="pt") as f:
        md = f.metadata()
    assert md["format"] == "gankit-generator-1"
    assert "players" not in json.loads(md["meta"])
    assert not any(k.startswith("G.") for k in load_file(str(out)))
    a = gankit.load_generator(out).sample(4, seed=3)
    assert a.equal(gankit.load_generator(runs.gd).sample(4, seed=3))


def test_damaged_translator_export_is_refused(runs, tmp_path):
    raw = bytearray(runs.export.read_bytes())
    raw[-3] ^= 0x10  # one bit of the last tensor
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(raw)
    with pytest.raises(gankit.UserError, match="do not match the checksum"):
        gankit.load_translator(bad)


@pytest.mark.parametrize("which", ["cg", "ckpt", "export"])
def test_load_generator_refuses_a_translation_run(runs, which):
    with pytest.raises(gankit.UserError, match="is a translation run") as e:
        gankit.load_generator(getattr(runs, which))
    assert "gankit translate" in str(e.value) and "gankit.load_translator" in str(e.value)


@pytest.mark.parametrize(
    "which,direction,fragment",
    [
        ("missing", "AtoB", "does not exist"),
        ("gd", "AtoB", "is a gan run that samples G(z), not a translator; use gankit sample"),
        ("cg", "CtoD", "has directions AtoB, BtoA; got 'CtoD'"),
        ("export", "atob", "has directions AtoB, BtoA; got 'atob'"),
    ],
)
def test_load_translator_refuses(runs, which, direction, fragment):
    path = runs.base / "nope" if which == "missing" else getattr(runs, which)
    with pytest.raises(gankit.UserError) as e:
        gankit.load_translator(path, direction)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "x,fragment",
    [
        (images(2)[0], "must be 4-D"),
        (images(2).repeat(1, 3, 1, 1), "takes 1-channel images, got 3 channels"),
        (images(2)[:, :, :16, :16], "takes 28x28 images, got 16x16"),
        (images(2).to(torch.uint8), "must be float"),
        (images(0), "empty"),
        (images(2).index_fill(3, torch.tensor([0]), float("nan")), "NaN or infinite"),
        ((images(2) + 1) * 127.5, "must be in [-1, 1]"),
        (images(2).numpy(), "must be a torch.Tensor"),
    ],
)
def test_translator_checks_images(runs, x, fragment):
    tr = gankit.load_translator(runs.cg)
    with pytest.raises(gankit.UserError) as e:
        tr(x)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_translator_batches_and_keeps_the_mode(runs):
    tr = gankit.load_translator(runs.cg)
    x = images(300, seed=2).clamp(-1, 1) * 1.0004  # in range but for rounding (the slack)
    tr.net.train()
    y = tr(x)  # two batches: 256 + 44
    assert tr.net.training  # left as it was
    tr.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(y, tr.net(x))


def test_write_translations(runs, tmp_path):
    tr = gankit.load_translator(runs.cg, "BtoA")
    x = images(13, seed=4)
    names = [f"im{i}" for i in range(13)]
    res = write_translations(tr, x, names, tmp_path / "out")
    assert res == {"n": 13, "out": tmp_path / "out", "grid": tmp_path / "out" / "grid.png"}
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted([f"{n}.png" for n in names] + ["grid.png"])
    y = tr(x)
    with Image.open(tmp_path / "out" / "im3.png") as im:
        assert im.mode == "L" and im.size == (28, 28)
        want = ((y[3, 0] + 1) * 127.5).round().to(torch.uint8)
        assert torch.equal(torch.from_numpy(np.array(im)), want)
    with Image.open(res["grid"]) as grid:  # 2 chunks of 8 -> 4 rows of 8 cells (28 px + 2 pad)
        assert grid.size == (8 * 30 + 2, 4 * 30 + 2)


def test_grid_rows_put_sources_above_translations():
    src, out = images(10), -images(10)
    rows = grid_rows(src, out, 8)  # [32, C, H, W]: src 0-7, out 0-7, src 8-9 + 6 pads, out ...
    assert rows.shape == (32, *SHAPE)
    assert rows[:8].equal(src[:8]) and rows[8:16].equal(out[:8])
    assert rows[16:18].equal(src[8:]) and rows[24:26].equal(out[8:])
    assert (rows[18:24] == -1).all() and (rows[26:] == -1).all()


def test_grid_is_capped_at_64_inputs(runs, tmp_path):
    tr = gankit.load_translator(runs.cg)
    res = write_translations(tr, images(70), [f"x{i}" for i in range(70)], tmp_path)
    assert len(list(tmp_path.glob("x*.png"))) == 70
    with Image.open(res["grid"]) as grid:
        assert grid.size == (8 * 30 + 2, 16 * 30 + 2)


@pytest.mark.parametrize(
    "names,fragment",
    [
        (["a", "a"], "both be written as a.png"),
        (["grid"], "overwrite grid.png"),
        (["a/b"], "not a file name"),
    ],
)
def test_write_translations_refuses_bad_names(runs, tmp_path, names, fragment):
    tr = gankit.load_translator(runs.cg)
    with pytest.raises(gankit.UserError) as e:
        write_translations(tr, images(len(names)), names, tmp_path / "o")
    assert fragment in str(e.value)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# gankit translate
# ------------------------------------------------------------------------------------------------


def test_cli_translates_a_folder(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["translate", str(runs.cg), "--input", str(runs.pngs), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "translated 3 images AtoB" in lines[0] and "grid.png" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png",
        "grid.png",
        "sub_b.png",
        "sub_deeper_c.png",
    ]
    with Image.open(out / "a.png") as im:
        assert im.mode == "L" and im.size == (28, 28)
    with Image.open(out / "grid.png") as im:
        assert im.size == (3 * 30 + 2, 2 * 30 + 2)  # one row of sources, one of translations


def test_cli_n_caps_a_folder(runs, tmp_path, capsys):
    argv = ["translate", str(runs.export), "--input", str(runs.pngs), "--out", str(tmp_path)]
    assert main([*argv, "--n", "2", "--direction", "BtoA"]) == 0
    assert "translated 2 images BtoA" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "grid.png", "sub_b.png"]


def test_cli_translates_a_data_set(runs, tmp_path, capsys):
    out = tmp_path / "usps"
    argv = ["translate", str(runs.cg), "--input", "usps", "--n", "5", "--out", str(out)]
    assert main([*argv, "--data-dir", str(runs.data)]) == 0
    assert "translated 5 images AtoB" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 6 and names[-1] == "grid.png"
    assert all(n.startswith(f"{i:05d}_digit") for i, n in enumerate(names[:-1]))
    # the default data root is the run's; BtoA takes MNIST, the run's domain B
    out = tmp_path / "mnist"
    argv = ["translate", str(runs.ckpt), "--input", "mnist", "--n", "3", "--out", str(out)]
    assert main([*argv, "--direction", "BtoA", "--split", "train"]) == 0
    assert len(list(out.glob("0000*_digit*.png"))) == 3


def _bad_cases(runs, tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    (tmp / "clash").mkdir()
    Image.new("L", (28, 28)).save(tmp / "clash" / "x.png")
    Image.new("L", (28, 28)).save(tmp / "clash" / "x.jpg")
    (tmp / "notes.txt").write_text("keep me\n")
    cg, pngs, out = str(runs.cg), str(runs.pngs), str(tmp / "out")
    return {
        "empty-folder": ([cg, "--input", str(tmp / "empty"), "--out", out], "holds no PNG or JPEG"),
        "not-a-name": ([cg, "--input", "svhn", "--out", out], "neither a folder nor a data set"),
        "a-file": ([cg, "--input", str(tmp / "notes.txt"), "--out", out], "neither a folder"),
        "folder-name": ([cg, "--input", "folder", "--out", out], "neither a folder"),
        "toy-data": ([cg, "--input", "ring", "--out", out], "is a toy data set, not images"),
        "empty-input": ([cg, "--input", "", "--out", out], "--input is empty"),
        "clash": ([cg, "--input", str(tmp / "clash"), "--out", out], "both be written as x.png"),
        "direction": (
            [cg, "--direction", "CtoD", "--input", pngs, "--out", out],
            "has directions AtoB, BtoA; got 'CtoD'",
        ),
        "gd-run": ([str(runs.gd), "--input", pngs, "--out", out], "that samples G(z), not a"),
        "missing-run": ([str(tmp / "nope"), "--input", pngs, "--out", out], "does not exist"),
        "out-is-a-file": ([cg, "--input", pngs, "--out", str(tmp / "notes.txt")], "is a file"),
        "n-zero": ([cg, "--input", pngs, "--out", out, "--n", "0"], "--n: must be at least 1"),
        "split": ([cg, "--input", "usps", "--out", out, "--split", "val"], "--split"),
    }


CASES = [
    "empty-folder",
    "not-a-name",
    "a-file",
    "folder-name",
    "toy-data",
    "empty-input",
    "clash",
    "direction",
    "gd-run",
    "missing-run",
    "out-is-a-file",
    "n-zero",
    "split",
]


@pytest.mark.parametrize("case", CASES)
def test_cli_bad_input(runs, tmp_path, capsys, case):
    argv, fragment = _bad_cases(runs, tmp_path)[case]
    assert main(["translate", *argv]) == 2
    captured = capsys.readouterr()
    assert fragment in one_error_line(captured.err) and captured.out == ""
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


def test_cli_sample_refuses_a_translation_run(runs, tmp_path, capsys):
    assert main(["sample", str(runs.cg), "--out", str(tmp_path / "s.png")]) == 2
    assert "is a translation run" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "s.png").exists()


def test_cli_bad_input_end_to_end(runs, tmp_path):
    """``python -m gankit.cli``: the exit status and the one line a shell sees."""
    cmd = [sys.executable, "-m", "gankit.cli", "translate", str(runs.gd), "--input"]
    cmd += [str(runs.pngs), "--out", str(tmp_path / "out")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert "not a translator" in one_error_line(p.stderr)
    assert not (tmp_path / "out").exists()


def test_translator_dataclass_fields():
    net = ResnetGenerator(1, 1, 4, 1)
    tr = Translator(net, "AtoB", SHAPE, gankit.Config())
    assert tr.step is None and tr.device.type == "cpu" and tr.to("cpu") is tr


def test_to_pil_writes_8_bit_gray_and_rgb():
    gray = to_pil(torch.tensor([[[-1.0, 0.0, 1.0]]]))  # [1, 1, 3]
    assert gray.mode == "L" and np.array(gray).tolist() == [[0, 128, 255]]
    rgb = to_pil(torch.tensor([[[-1.0]], [[0.0]], [[1.0]]]))  # [3, 1, 1]
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (0, 128, 255)
