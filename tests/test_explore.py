"""The explorer's API (gankit explore): every panel's endpoint on tiny real runs, bad input
answered in one sentence, no file outside the run folder, failures without tracebacks, the CLI,
and the notebook displays (``_repr_html_``)."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gankit
from gankit.api_explore import session as explore_session
from gankit.cli import main
from gankit.explore import check_host, start
from gankit.explore.app import create_app

pytestmark = pytest.mark.usefixtures("one_thread")

STYLE = [  # a 16 px conditional StyleGAN: classes, a mapping network, style mixing
    "data.size=16",
    "data.classes=true",
    "model.z_dim=16",
    "model.options.w_dim=16",
    "model.options.channel_base=64",
    "model.options.channel_max=16",
    "model.options.mapping_layers=2",
]


def _train(base, preset: str, name: str, overrides: list[str], data_root=None):
    over = [f"out={base}", f"name={name}", "log.quiet=true", *overrides]
    if data_root is not None:
        over += [f"data.root={data_root}", "data.download=false"]
    return gankit.train(preset, over).dir


class TinyClassifier(nn.Module):
    """A fixed random linear classifier of 16 px images: edits need only a differentiable one."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(16 * 16, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 4.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root):
    base = tmp_path_factory.mktemp("explore")
    small = ["train.steps=2", "train.batch_size=8", "log.n_samples=16", "log.every=1"]
    style = _train(base, "mnist-stylegan", "style", [*STYLE, *small], data_root)
    every = ["log.every=10", "log.checkpoint_every=20", "log.sample_every=20"]
    ring = _train(base, "ring", "ring", ["train.steps=40", *every])
    cycle = _train(
        base,
        "usps-mnist-cyclegan",
        "cycle",
        [
            "train.steps=2",
            "train.batch_size=4",
            "variant.ngf=4",
            "variant.n_blocks=1",
            "variant.ndf=8",
            "log.every=1",
        ],  # fmt: skip
        data_root,
    )
    return SimpleNamespace(base=base, style=style, ring=ring, cycle=cycle, data=data_root)


def _client(run, **kw):
    s = explore_session(run, **kw)
    s.loaders.classifier = TinyClassifier  # no cached MNIST classifier needed
    return create_app(s).test_client(), s


@pytest.fixture(scope="module")
def style(runs):
    return _client(runs.style)[0]


def _pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    raw = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)), dtype=np.int16)


def _ok(resp) -> dict:
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_info_describes_the_run_and_its_model(style, runs):
    info = _ok(style.get("/api/info"))
    assert info["name"] == "style" and "stylegan" in info["config"]
    m = info["model"]
    assert m["kind"] == "image" and m["mapping"] and m["num_classes"] == 10
    assert m["groups"] == ["coarse", "middle", "fine"] and m["shape"] == [1, 16, 16]
    assert info["samples"] and info["samples"][-1]["file"].startswith("samples/")
    page = style.get("/")
    assert page.status_code == 200 and b"explore.js" in page.data
    assert style.get("/static/explore.js").status_code == 200


def test_grid_truncation_classes_and_per_class_rows(style):
    g = _ok(style.get("/api/grid?seed=3&n=8&psi=1"))
    images = [_pixels(u) for u in g["rows"][0]["images"]]
    assert len(images) == 8 and len(g["rows"][0]["classes"]) == 8
    assert any(np.abs(images[0] - x).max() > 0 for x in images[1:])  # distinct samples
    flat = [_pixels(u) for u in _ok(style.get("/api/grid?seed=3&n=8&psi=0"))["rows"][0]["images"]]
    assert all(np.array_equal(flat[0], x) for x in flat)  # psi 0 in W: every sample is w_avg's
    half = _pixels(_ok(style.get("/api/grid?seed=3&n=8&psi=0.5"))["rows"][0]["images"][0])
    assert not np.array_equal(half, images[0]) and not np.array_equal(half, flat[0])
    one = _ok(style.get("/api/grid?seed=3&n=4&class=7"))["rows"][0]
    assert one["classes"] == [7] * 4
    rows = _ok(style.get("/api/grid?seed=3&n=4&per_class=true"))["rows"]
    assert [r["class"] for r in rows] == list(range(10)) and all(
        len(r["images"]) == 4 for r in rows
    )


def test_interpolation_runs_from_pick_a_to_pick_b(style):
    grid = _ok(style.get("/api/grid?seed=5&n=6&psi=1"))["rows"][0]["images"]
    q = "a_seed=5&a_n=6&a_index=1&b_seed=5&b_n=6&b_index=4&steps=5"
    for space, mode in (("z", "slerp"), ("w", "lerp")):
        r = _ok(style.get(f"/api/interpolate?{q}&space={space}&mode={mode}"))
        frames = [_pixels(u) for u in r["images"]]
        assert len(frames) == 5 and r["space"] == space
        assert np.abs(frames[0] - _pixels(grid[1])).max() <= 2  # the ends are the picks
        assert not np.array_equal(frames[0], frames[-1])
    assert _ok(style.get(f"/api/interpolate?{q}&space=w&mode=slerp"))["mode"] == "lerp"


def test_edit_moves_a_pick_towards_the_target(style):
    pick = _ok(style.get("/api/grid?seed=0&n=4"))["rows"][0]["images"][0]
    with torch.no_grad():  # the target: the class the tiny classifier likes least for this pick
        before = torch.from_numpy(_pixels(pick)).float() / 127.5 - 1
        target = int(TinyClassifier()(before[None, None]).argmin())
    r = _ok(style.get(f"/api/edit?seed=0&n=4&index=0&steps=30&space=w&target={target}"))
    assert r["p_target_after"] > r["p_target_before"] and r["distance"] > 0
    assert 0 <= r["entanglement"] <= 1 and isinstance(r["success"], bool)
    assert not np.array_equal(_pixels(r["before"]), _pixels(r["after"]))
    d = _ok(style.get(f"/api/edit?seed=0&n=4&index=0&target={target}&mode=direction"))
    assert d["mode"] == "direction" and d["space"] == "z"


def test_style_mixing_takes_a_group_from_b_and_resamples_noise(style):
    q = "a_seed=1&a_n=4&a_index=0&b_seed=1&b_n=4&b_index=2"
    r = _ok(style.get(f"/api/mix?{q}&group=coarse&noise_seed=7"))
    assert len(r["noise"]) == 4 and r["layers"] == [0, 1, 2, 3][: len(r["layers"])]
    mix, a = _pixels(r["mix"]), _pixels(r["a"])
    assert not np.array_equal(mix, a)
    same = _ok(style.get("/api/mix?a_seed=1&a_n=4&a_index=0&b_seed=1&b_n=4&b_index=0&group=fine"))
    assert np.array_equal(_pixels(same["mix"]), _pixels(same["a"]))  # B = A: nothing to take


BAD = [
    ("/api/grid?psi=1.5", "psi must be in [0.0, 1.0]"),
    ("/api/grid?psi=nan", "psi must be in"),
    ("/api/grid?n=100000", "n must be in 1..256"),
    ("/api/grid?n=40&per_class=true", "n must be in 1..32"),
    ("/api/grid?seed=-1", "seed must be in 0..2147483647"),
    ("/api/grid?seed=abc", "seed must be an integer"),
    ("/api/grid?class=10", "class must be in 0..9"),
    ("/api/grid?per_class=maybe", "per_class must be one of"),
    ("/api/interpolate?a_index=0&b_index=1&steps=1000", "steps must be in 2..64"),
    ("/api/interpolate?a_index=0", "b_index is missing"),
    ("/api/interpolate?a_index=0&b_index=1&mode=cubic", "mode must be one of lerp, slerp"),
    ("/api/edit?index=0", "target is missing"),
    ("/api/edit?index=9&n=4&target=1", "index must be in 0..3"),
    ("/api/edit?index=0&target=1&space=q", "space must be one of z, w"),
    ("/api/edit?index=0&target=12&steps=1", "target class must be in 0..9"),
    ("/api/mix?a_index=0&b_index=1&group=all", "group must be one of coarse, middle, fine"),
    ("/api/translate", "not a translation run"),
    ("/api/toy?step=1", "not a 2-D run"),
]


@pytest.mark.parametrize(("url", "message"), BAD)
def test_bad_input_is_one_sentence_not_a_traceback(style, url, message):
    resp = style.get(url)
    body = resp.get_json()
    assert resp.status_code == 400 and message in body["error"], body
    assert "Traceback" not in body["error"] and "\n" not in body["error"]


def test_no_file_outside_the_run_folder(runs, tmp_path):
    client, _ = _client(runs.style)
    secret = runs.base / "secret.yaml"
    secret.write_text("password: 1\n")
    (runs.style / "link.yaml").symlink_to(secret)
    assert client.get("/files/config.yaml").status_code == 200
    frame = sorted((runs.style / "samples").iterdir())[0].name
    assert client.get(f"/files/samples/{frame}").status_code == 200
    last = sorted((runs.style / "checkpoints").iterdir())[-1].name
    bad = ["../secret.yaml", "..%2Fsecret.yaml", "%2e%2e/secret.yaml", "samples/../../secret.yaml"]
    bad += ["/etc/passwd", "%2Fetc%2Fpasswd", "..\\secret.yaml", "link.yaml", "checkpoints/"]
    bad += [f"checkpoints/{last}", "nothing.png", ".lock"]
    for name in bad:
        resp = client.get(f"/files/{name}", follow_redirects=True)
        assert resp.status_code in (404, 405), (name, resp.status_code)
        assert b"password" not in resp.data and b"root:" not in resp.data
    assert client.get("/static/../../api.py").status_code == 404


def test_metrics_are_read_incrementally_while_a_run_writes(runs):
    client, s = _client(runs.ring)
    first = _ok(client.get("/api/metrics"))
    assert len(first["rows"]) == 4 and first["rows"][-1]["step"] == 40
    path = s.run_dir / "metrics.jsonl"
    with open(path, "a") as f:  # a row being written: only its complete part is there
        f.write('{"step": 50, "loss_D": 1.0}\n{"step": 60, "lo')
    more = _ok(client.get(f"/api/metrics?offset={first['offset']}"))
    assert [r["step"] for r in more["rows"]] == [50]
    with open(path, "a") as f:
        f.write('ss_D": 0.5}\n')
    last = _ok(client.get(f"/api/metrics?offset={more['offset']}"))
    assert [r["step"] for r in last["rows"]] == [60]


def test_toy_run_draws_d_over_points_at_each_checkpoint(runs):
    client, _ = _client(runs.ring)
    m = _ok(client.get("/api/info"))["model"]
    assert m["kind"] == "toy" and m["toy_steps"] == [20, 40]
    r = _ok(client.get("/api/toy?step=20"))
    heat = np.array(r["heat"])
    assert heat.shape == (64, 64) and 0 <= heat.min() < heat.max() <= 1  # D's probabilities
    assert len(r["real"]) == len(r["fake"]) == 1000 and r["label"] == "D(x)"
    late = np.array(_ok(client.get("/api/toy?step=40"))["heat"])
    assert not np.array_equal(heat, late)  # D changed between the saved steps
    bad = client.get("/api/toy?step=30").get_json()["error"]
    assert "step 30 has no checkpoint; saved steps: 20, 40" in bad


def test_translation_of_a_test_image_and_an_upload(runs):
    client, _ = _client(runs.cycle, data_root=str(runs.data))
    m = _ok(client.get("/api/info"))["model"]
    assert m["kind"] == "translation" and m["directions"] == ["AtoB", "BtoA"]
    tests = _ok(client.get("/api/test_images?domain=B&n=3"))["images"]
    assert len(tests) == 3
    r = _ok(client.get("/api/translate?direction=BtoA&index=2"))
    assert np.array_equal(_pixels(r["source"]), _pixels(tests[2]))
    assert {"translated", "reconstructed", "cycle_l1"} <= set(r)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 90)).save(buf, format="PNG")
    up = {"image": (io.BytesIO(buf.getvalue()), "x.png"), "direction": "AtoB"}
    r = _ok(client.post("/api/translate", data=up, content_type="multipart/form-data"))
    assert _pixels(r["translated"]).shape == (28, 28)
    junk = {"image": (io.BytesIO(b"not an image at all"), "x.png"), "direction": "AtoB"}
    bad = client.post("/api/translate", data=junk, content_type="multipart/form-data")
    assert bad.status_code == 400 and "not a readable image" in bad.get_json()["error"]
    big = {"image": (io.BytesIO(b"0" * (3 * 2**20)), "x.png"), "direction": "AtoB"}
    bad = client.post("/api/translate", data=big, content_type="multipart/form-data")
    assert bad.status_code == 413 and "larger than 2 MB" in bad.get_json()["error"]
    none = client.post("/api/translate", data={"direction": "AtoB"})
    assert none.status_code == 400 and "no image was uploaded" in none.get_json()["error"]


def test_a_failing_request_answers_a_message(runs, monkeypatch):
    client, s = _client(runs.style)

    def broken(*a, **k):
        raise RuntimeError("secret internals at /some/path.py line 3")

    monkeypatch.setattr(s, "grid", broken)
    resp = client.get("/api/grid")
    body = resp.get_json()
    assert resp.status_code == 500 and body["error"].startswith("the request failed (RuntimeError)")
    assert "secret" not in body["error"]
    assert client.get("/api/nothing").get_json()["error"].startswith("Not Found")


def test_server_binds_locally_and_answers_over_http(runs):
    assert check_host("127.0.0.1") is None and "anyone who can reach" in check_host("0.0.0.0")
    srv = start(explore_session(runs.ring), port=0)
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(srv.url + "api/info", timeout=30) as resp:
            assert json.load(resp)["model"]["kind"] == "toy"
    finally:
        srv.close()


def test_cli_explore_rejects_what_is_not_a_run(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder; pass a run folder" in err
    assert main(["explore", str(tmp_path)]) == 2
    assert "holds no gankit run" in capsys.readouterr().err


def test_run_and_generator_display_themselves_in_a_notebook(runs):
    G = gankit.load_generator(runs.style)
    html = G._repr_html_()
    assert html.count("data:image/png;base64,") == 1 and "step 2" in html
    ring = gankit.load_generator(runs.ring)
    run = gankit.Run(runs.ring, ring.config, json.loads((runs.ring / "summary.json").read_text()),
                     ring.net)  # fmt: skip
    html = run._repr_html_()
    assert html.count("data:image/png;base64,") == 2  # the picture of the samples, the losses
    assert "loss_D" in html and "ring" in html
