"""Image folders at scale: the three caches (memory, disk, none) give the same batches, resume bit
for bit with prefetching DataLoader workers, shard a global batch across processes, cut
non-square images by the stated policy, rebuild the disk cache when the files change, and name
or skip unreadable files; the new data keys refuse bad values in one line.

Folders are small synthetic PNGs made with PIL in ``tmp_path``; ``GANKIT_CACHE`` points into it.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from conftest import restored
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import ImageSource, build_source, folder_cache
from gankit.data import folder as folder_mod
from gankit.data.folder import FolderSampler, FolderSource, cache_folder, decode_folder
from gankit.errors import UserError

N = 23  # images in the test folder: batches of 5 cross epochs at uneven places
CACHES = ["memory", "disk", "none"]
MODES = [("memory", 0), ("disk", 0), ("disk", 2), ("none", 0), ("none", 2)]  # (cache, workers)


@pytest.fixture(autouse=True)
def gankit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    return tmp_path / "cache"


def make_folder(root: Path, n: int = N, seed: int = 0) -> Path:
    """``n`` noise PNGs of assorted non-square sizes in two class folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = int(rng.integers(8, 30)), int(rng.integers(8, 30))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = root / ("cats" if i % 3 else "dogs") / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
    return root


@pytest.fixture
def pngs(tmp_path) -> Path:
    return make_folder(tmp_path / "pngs")


def cfg(path: Path, cache: str = "memory", workers: int = 0, **kw) -> DataConfig:
    return DataConfig(
        name="folder", path=str(path), size=12, channels=3, cache=cache, workers=workers, **kw
    )


def draw(sampler, k: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    return [sampler.next() for _ in range(k)]


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for (x1, y1), (x2, y2) in zip(a, b, strict=True):
        assert torch.equal(x1, x2)
        assert (y1 is None and y2 is None) or torch.equal(y1, y2)


def test_every_cache_gives_the_same_batches(pngs):
    sources = {c: build_source(cfg(pngs, c)) for c in CACHES}
    assert isinstance(sources["memory"], ImageSource) and sources["memory"].cache == "memory"
    for c in ("disk", "none"):
        assert isinstance(sources[c], FolderSource) and sources[c].cache == c
        assert len(sources[c]) == N and sources[c].shape == (3, 12, 12)
        assert sources[c].labels.tolist() == sources["memory"].labels.tolist()
    ref = draw(sources["memory"].sampler(5, seed=3), 7)  # 35 draws: two epoch boundaries
    for c in ("disk", "none"):
        assert_same(draw(sources[c].sampler(5, seed=3), 7), ref)
        index = torch.tensor([4, 0, 22, 4])
        assert_same([sources[c].batch(index)], [sources["memory"].batch(index)])
        x, y = sources[c].sample(N)
        assert x.shape == (N, 3, 12, 12) and sorted(y.tolist()) == sorted(
            sources[c].labels.tolist()
        )
        with pytest.raises(UserError, match=f"has {N} images, {N + 1} were asked for"):
            sources[c].sample(N + 1)
    with pytest.raises(AttributeError, match="not held in memory"):
        sources["none"].images  # noqa: B018


@pytest.mark.parametrize("mode", MODES, ids=[f"{c}-w{w}" for c, w in MODES])
def test_exact_resume_with_prefetching_workers(pngs, mode):
    cache, workers = mode
    source = build_source(cfg(pngs, cache, workers))
    whole = draw(source.sampler(5, seed=7), 9)
    s1, s2 = restored(source, 5, skip=4)  # s1 has prefetched beyond its 4 batches
    # its state describes the batches handed out: that of a sampler that never prefetched
    plain = ImageSource("ref", torch.zeros(N, 1, 1, 1, dtype=torch.uint8), None, 0).sampler(5, 7)
    draw(plain, 4)
    state, ref = s1.state_dict(), plain.state_dict()
    assert (state["cursor"], state["epoch"]) == (ref["cursor"], ref["epoch"]) == (20, 0)
    assert torch.equal(state["perm"], ref["perm"])
    assert torch.equal(state["generator"], ref["generator"])
    assert_same(draw(s2, 5), whole[4:])
    assert_same(draw(s1, 5), whole[4:])


def test_resume_across_caches(pngs):
    """One stream in every mode: a memory run's checkpoint resumes in disk and none."""
    memory = build_source(cfg(pngs, "memory"))
    s = memory.sampler(5, seed=1)
    draw(s, 6)
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    expected = draw(s, 3)
    for c in ("disk", "none"):
        buf.seek(0)
        other = build_source(cfg(pngs, c, workers=2)).sampler(5, seed=99)
        other.load_state_dict(torch.load(buf, weights_only=True))
        assert_same(draw(other, 3), expected)
        other.close()


@pytest.mark.parametrize("cache", CACHES)
def test_shards_of_all_ranks_make_the_global_batch(pngs, cache):
    source = build_source(cfg(pngs, cache))
    whole = source.sampler(6, seed=2)
    full = draw(whole, 5)
    for world in (2, 3):
        shards = []
        for rank in range(world):
            s = source.sampler(6, seed=2)
            s.set_shard(rank, world)
            shards.append(draw(s, 5))
            state = s.state_dict()
            assert state["cursor"] == whole.state_dict()["cursor"]  # the global stream's state
            assert torch.equal(state["perm"], whole.state_dict()["perm"])
        for k in range(5):
            assert torch.equal(torch.cat([sh[k][0] for sh in shards]), full[k][0])
            assert torch.equal(torch.cat([sh[k][1] for sh in shards]), full[k][1])
    with pytest.raises(ValueError, match="a batch of 6 does not split evenly over 4 processes"):
        source.sampler(6, seed=2).set_shard(0, 4)
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        source.sampler(6, seed=2).set_shard(2, 2)


def test_a_shard_decodes_only_its_images(pngs, monkeypatch):
    calls = []
    decode = folder_mod.decode_image

    def counting(path, *args):
        calls.append(path)
        return decode(path, *args)

    monkeypatch.setattr(folder_mod, "decode_image", counting)
    s = build_source(cfg(pngs, "none")).sampler(6, seed=0)
    s.set_shard(1, 3)
    x, y = s.next()
    assert x.shape == (2, 3, 12, 12) and len(calls) == 2


def test_sharded_resume_with_workers(pngs):
    source = build_source(cfg(pngs, "none", workers=2))
    s1 = source.sampler(6, seed=4)
    s1.set_shard(1, 2)
    draw(s1, 3)
    s2 = source.sampler(6, seed=0)
    s2.set_shard(1, 2)
    s2.load_state_dict(s1.state_dict())
    assert_same(draw(s2, 4), draw(s1, 4))


def white(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 255 if mode == "L" else (255, 255, 255)).save(path)


@pytest.mark.parametrize("channels", [1, 3])
def test_crop_policies(tmp_path, channels):
    white(tmp_path / "wide.png", (40, 20))  # wide, all white
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (10, 0, 30, 20))  # black quarters left and right
    img.save(tmp_path / "zebra.png")

    def images(crop):
        c = DataConfig(name="folder", path=str(tmp_path), size=16, channels=channels, crop=crop)
        return build_source(c).images  # [2, C, 16, 16]: wide, zebra

    center, pad, squash = images("center"), images("pad"), images("resize")
    assert center.shape == pad.shape == squash.shape == (2, channels, 16, 16)
    assert (center[0] == 255).all() and (squash[0] == 255).all()
    assert (center[1, :, :, 2:-2] >= 230).all()  # the white middle, not squashed
    assert (pad[0, :, :3] == 0).all() and (pad[0, :, -3:] == 0).all()  # black bars above, below
    assert (pad[0, :, 5:11] == 255).all()  # the whole image between them
    assert (squash[1, :, :, :3] == 0).all() and (squash[1, :, :, 5:11] == 255).all()
    assert (pad[1, :, 5:11, :2] == 0).all() and (pad[1, :, 5:11, 5:11] == 255).all()


def test_disk_cache_is_reused_and_rebuilt_when_files_change(pngs, gankit_cache, monkeypatch):
    before = sorted(p.relative_to(pngs) for p in pngs.rglob("*"))
    first = build_source(cfg(pngs, "disk"))
    where = cache_folder(pngs)
    assert where.parent == gankit_cache / "folders"
    (u8,) = where.glob("*.u8")
    assert u8.stat().st_size == N * 3 * 12 * 12 and (where / f"{u8.stem}.json").is_file()
    assert sorted(p.relative_to(pngs) for p in pngs.rglob("*")) == before  # nothing in the data
    assert not list(where.glob(".*.tmp"))  # written atomically: no temporaries left

    def no_decoding(*args, **kw):
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as m:
        m.setattr(folder_mod, "_decode_into", no_decoding)
        again = build_source(cfg(pngs, "disk"))
        x, _ = again.batch(torch.arange(N))
    assert torch.equal(x, first.batch(torch.arange(N))[0])

    Image.new("RGB", (9, 9), (255, 0, 0)).save(pngs / "cats" / "001.png")  # rewritten
    changed = build_source(cfg(pngs, "disk"))
    assert [p.name for p in where.glob("*.u8")] != [u8.name] and len(list(where.glob("*.u8"))) == 1
    red = changed.batch(torch.tensor([0]))[0][0]  # [3, 12, 12]: cats/001.png, the first
    assert torch.equal(red[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    white(pngs / "dogs" / "new.png", (9, 9))  # added
    assert len(build_source(cfg(pngs, "disk"))) == N + 1
    (pngs / "dogs" / "new.png").unlink()  # removed: back to N
    assert len(build_source(cfg(pngs, "disk"))) == N
    assert len(list(where.glob("*.u8"))) == len(list(where.glob("*.json"))) == 1


def test_auto_picks_memory_then_disk_then_none(pngs, monkeypatch):
    assert build_source(cfg(pngs, "auto")).cache == "memory"  # 23 tiny images: within 4 GiB
    assert build_source(cfg(pngs, "auto", memory_gb=1e-6)).cache == "disk"
    monkeypatch.setattr(folder_mod, "free_bytes", lambda folder: 0)
    monkeypatch.setattr(folder_cache, "free_bytes", lambda folder: 0)
    assert build_source(cfg(pngs, "auto", memory_gb=1e-6)).cache == "none"
    shutil.rmtree(cache_folder(pngs))  # the cache built above would be reused
    with pytest.raises(UserError, match="the disk cache of .* needs 0.0 GiB, more than the 0.0"):
        build_source(cfg(pngs, "disk"))


def test_workers_decode_as_the_main_process_does(pngs, monkeypatch):
    monkeypatch.setattr(folder_mod, "CHUNK_IMAGES", 4)  # six worker tasks
    one, labels, names = decode_folder(pngs, 12, 3, "pad", workers=0)
    two, labels2, names2 = decode_folder(pngs, 12, 3, "pad", workers=2)
    assert torch.equal(one, two) and torch.equal(labels, labels2) and names == names2
    assert names == ["cats", "dogs"] and one.shape == (N, 3, 12, 12)


def add_bad_files(folder: Path) -> list[Path]:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, "JPEG")
    garbage, truncated = folder / "cats" / "002x.png", folder / "dogs" / "bad.jpg"
    garbage.write_bytes(b"this is not a png")
    truncated.write_bytes(buf.getvalue()[:300])
    return [garbage, truncated]


@pytest.mark.parametrize("cache", CACHES)
def test_bad_files_are_named_or_skipped(pngs, cache):
    labels = build_source(cfg(pngs)).labels.tolist()
    bad = add_bad_files(pngs)
    if cache == "none":  # streamed: a bad file is met when it is drawn
        source = build_source(cfg(pngs, cache))
        with pytest.raises(UserError) as err:
            draw(source.sampler(N + 2, seed=0), 1)
    else:
        with pytest.raises(UserError) as err:
            build_source(cfg(pngs, cache))
    msg = str(err.value)
    assert "\n" not in msg and any(str(p) in msg for p in bad)
    assert msg.endswith("or set data.skip_bad=true to skip unreadable files")
    source = build_source(cfg(pngs, cache, skip_bad=True))
    if cache == "none":
        assert len(source) == N + 2 and source.skipped == []
        x, y = source.sampler(N + 2, seed=0).next()  # one epoch: every file drawn once
        assert x.shape == (N + 2, 3, 12, 12) and len(y) == N + 2
        assert sorted(source.skipped) == sorted(map(str, bad))
    else:
        assert len(source) == N and source.skipped == sorted(map(str, bad))
        assert source.labels.tolist() == labels  # those of the readable files, in order
    if cache == "disk":  # the cache remembers its bad files, and still names them
        with pytest.raises(UserError, match="002x.png"):
            build_source(cfg(pngs, cache))


def test_cli_names_a_bad_file_in_one_line(pngs, tmp_path, capsys):
    add_bad_files(pngs)
    argv = ["train", f"out={tmp_path / 'runs'}", "data.name=folder", f"data.path={pngs}"]
    assert main([*argv, "data.size=12", "data.channels=3", "train.steps=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gankit: error: cannot read image ") and "data.skip_bad=true" in err


@pytest.mark.parametrize(
    "over, message",
    [
        (["data.cache=fast"], "data.cache must be one of auto, memory, disk, none, got 'fast'"),
        (["data.crop=square"], "data.crop must be one of center, pad, resize, got 'square'"),
        (["data.workers=-1"], "data.workers must be 0 (decode in the main process), a number"),
        (["data.workers=two"], "data.workers must be int or NoneType, got 'two'"),
        (["data.memory_gb=0"], "data.memory_gb must be a positive number of GiB, got 0.0"),
        (["data.skip_bad=maybe"], "data.skip_bad must be true or false, got 'maybe'"),
        (
            ["data.name=mnist", "data.cache=disk"],
            "data.cache is a key of image folders (data.name=folder), not of mnist; drop it",
        ),
        (
            ["data.name=pair", "data.a.name=usps", "data.b.name=mnist", "data.a.crop=pad"],
            "data.a.crop is a key of image folders (data.name=folder), not of usps; drop it",
        ),
    ],
)
def test_bad_values_of_the_new_keys(over, message):
    with pytest.raises(UserError) as err:
        gankit.config.load(None, over)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_new_keys_round_trip_and_reach_a_folder_domain(tmp_path):
    over = ["data.name=folder", "data.path=x", "data.cache=disk", "data.workers=3"]
    c = gankit.config.load(None, [*over, "data.crop=pad", "data.skip_bad=true"])
    assert gankit.config.load(c.to_dict()) == c
    assert (c.data.cache, c.data.workers, c.data.crop, c.data.skip_bad) == ("disk", 3, "pad", True)
    assert gankit.config.load(None, ["data.workers=null"]).data.workers is None
    pair = ["data.name=pair", "data.a.name=folder", "data.a.path=x", "data.b.name=mnist"]
    c = gankit.config.load(None, [*pair, "data.a.cache=none"])
    assert gankit.config.domain_config(c.data, "a").cache == "none"


def test_sampler_without_next_starts_no_workers(pngs):
    s = build_source(cfg(pngs, "none", workers=2)).sampler(5, seed=0)
    assert isinstance(s, FolderSampler) and s._batches is None
    s.load_state_dict(s.state_dict())  # resume before the first batch: still nothing started
    assert s._batches is None and s.epoch == 0


@pytest.mark.parametrize("cache", ["disk", "none"])
def test_unlabelled_folder_served_from_disk_or_files(tmp_path, cache):
    for i in range(3):
        white(tmp_path / "flat" / f"{i}.png", (10 + i, 8))
    source = build_source(cfg(tmp_path / "flat", cache))
    assert source.labels is None and source.num_classes == 0
    x, y = source.sampler(4, seed=0).next()
    assert y is None and x.shape == (4, 3, 12, 12) and (x == 1).all()
    assert source.sample(3)[1] is None


def test_training_reads_a_streamed_folder_with_workers(pngs, tmp_path):
    over = [f"out={tmp_path / 'runs'}", "data.name=folder", f"data.path={pngs}", "data.size=8"]
    over += ["data.channels=3", "data.cache=none", "data.workers=2", "train.steps=3"]
    over += ["train.batch_size=4", "log.n_samples=4", "log.every=1", "log.quiet=true", "device=cpu"]
    run = gankit.train(None, over)
    assert run.summary["steps"] == 3 and run.config.data.cache == "none"


def test_a_run_lists_the_files_it_skipped_in_its_summary(pngs, tmp_path):
    bad = add_bad_files(pngs)
    over = [f"out={tmp_path / 'runs'}", "data.name=folder", f"data.path={pngs}", "data.size=8"]
    over += ["data.channels=3", "data.skip_bad=true", "train.steps=2", "train.batch_size=4"]
    over += ["log.n_samples=4", "log.quiet=true", "device=cpu"]
    run = gankit.train(None, over)
    assert run.summary["skipped_files"] == {"count": 2, "files": sorted(map(str, bad))}
    saved = json.loads((run.dir / "summary.json").read_text())
    assert saved["skipped_files"]["count"] == 2
