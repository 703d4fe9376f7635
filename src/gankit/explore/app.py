"""The explorer's web routes (Flask): one static page, a JSON API and the run's own files.

Every parameter is checked here, before torch runs, and a bad one answers 400 with
``{"error": "<one sentence>"}``; any other failure answers with a message too, never a
traceback (that goes to the terminal). Files are served only from inside the run folder, only
pictures and text the page needs, never checkpoints; uploads are capped and must decode as images.
"""

from __future__ import annotations

import io
import json
import logging
import math
import traceback
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from ..errors import UserError
from ..report.plots import find_samples
from .session import Pick, Session

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD = 2 * 1024 * 1024  # bytes of one uploaded image
MAX_PIXELS = 4096 * 4096  # an uploaded image's width x height
MAX_GRID = 256  # samples of one grid
MAX_PER_CLASS = 32  # columns of a per-class grid
MAX_STEPS = 64  # frames of an interpolation
MAX_EDIT_STEPS = 500
MAX_SEED = 2**31 - 1
MAX_METRICS_BYTES = 8 * 1024 * 1024  # of metrics.jsonl read per request
SERVED = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".json": "application/json",
    ".jsonl": "text/plain",
    ".yaml": "text/plain",
    ".html": "text/html",
}
log = logging.getLogger("gankit.explore")


# ------------------------------------------------------------------------------ parameters
def _raw(name: str, default: Any) -> Any:
    value = request.args.get(name)
    if value is None and request.form:
        value = request.form.get(name)
    return default if value is None or value == "" else value


def int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    """The integer parameter ``name`` in ``lo..hi`` (``default`` when absent)."""
    raw = _raw(name, default)
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an integer in {lo}..{hi}, got {str(raw)[:40]!r}") from None
    if not lo <= value <= hi:
        raise UserError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def float_arg(name: str, default: float, lo: float, hi: float) -> float:
    raw = _raw(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number in [{lo}, {hi}], got {str(raw)[:40]!r}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise UserError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def choice_arg(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = str(_raw(name, default))
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def bool_arg(name: str) -> bool:
    return choice_arg(name, "false", ("true", "false", "1", "0")) in ("true", "1")


def class_arg(session: Session, name: str = "class") -> int | None:
    """A class of the generator, checked against its number of classes."""
    raw = _raw(name, None)
    if raw is None:
        return None
    k = int(session.generator().num_classes)
    if not k:
        raise UserError(f"this generator is unconditional; drop {name}")
    return int_arg(name, None, 0, k - 1)


def pick_arg(session: Session, prefix: str = "") -> Pick:
    """A picked sample: ``<prefix>seed``, ``<prefix>n``, ``<prefix>index`` and, for a row of
    the per-class grid, ``<prefix>class``."""
    n = int_arg(f"{prefix}n", 64, 1, MAX_GRID)
    index = int_arg(f"{prefix}index", None, 0, n - 1)
    if index is None:
        raise UserError(f"{prefix}index is missing; pick a sample first (click one in the grid)")
    seed = int_arg(f"{prefix}seed", 0, 0, MAX_SEED)
    return Pick(seed, n, index, class_arg(session, f"{prefix}class"))


def space_arg(session: Session) -> str:
    space = choice_arg("space", "z", ("z", "w"))
    if space == "w" and not session.describe().get("mapping"):
        raise UserError("space=w needs a generator with a mapping network (StyleGAN); use z")
    return space


# ------------------------------------------------------------------------------ run files
def run_file(run_dir: Path, name: str) -> Path:
    """``name`` inside ``run_dir`` as a file the page may read, else a UserError (404)."""
    root = run_dir.resolve()
    if "\\" in name or "\x00" in name or name.startswith("/"):
        raise FileNotFoundError(name)
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file() or path.suffix.lower() not in SERVED:
        raise FileNotFoundError(name)
    if "checkpoints" in path.relative_to(root).parts:
        raise FileNotFoundError(name)
    return path


def read_metrics_from(path: Path, offset: int) -> tuple[list[dict], int]:
    """Complete JSON rows of ``metrics.jsonl`` from byte ``offset``, and the offset after them
    (a row the trainer is still writing waits for the next call)."""
    if not path.is_file():
        return [], 0
    size = path.stat().st_size
    if offset > size:  # the file was replaced (a fresh run): start over
        offset = 0
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(MAX_METRICS_BYTES)
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows, offset + end


def _info(session: Session) -> dict:
    run = session.run_dir
    summary: dict = {}
    if (run / "summary.json").is_file():
        try:
            summary = json.loads((run / "summary.json").read_text(errors="replace"))
        except ValueError:
            summary = {"problem": "summary.json could not be read"}
    config = (
        (run / "config.yaml").read_text(errors="replace") if (run / "config.yaml").is_file() else ""
    )
    samples = [
        {"step": s, "file": p.relative_to(run).as_posix()} for s, p in find_samples(run / "samples")
    ]
    warnings = summary.get("warnings") or []
    return {
        "name": run.name,
        "config": config,
        "summary": {k: v for k, v in summary.items() if k != "warnings"}
        if isinstance(summary, dict)
        else {},
        "warnings": warnings if isinstance(warnings, list) else [str(warnings)],
        "samples": samples,
        "model": session.describe(),
    }


# ------------------------------------------------------------------------------ uploads
def uploaded_image(shape: tuple[int, ...]) -> Any:
    """The uploaded file ``image`` as a float tensor ``[C, H, W]`` in [-1, 1] of ``shape``."""
    from PIL import Image

    from ..data.images import DECODE_ERRORS, square, to_8bit, to_float

    f = request.files.get("image")
    if f is None or not f.filename:
        raise UserError("no image was uploaded; choose a PNG or JPEG file")
    data = f.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise UserError(f"the upload is larger than {MAX_UPLOAD // 2**20} MB; pick a smaller image")
    c, h, _ = shape
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
                raise UserError(f"the upload is not a PNG or JPEG image ({img.format})")
            if img.width * img.height > MAX_PIXELS:
                raise UserError("the uploaded image has more than 16 megapixels; scale it down")
            img = to_8bit(img).convert("L" if c == 1 else "RGB")
            img = square(img, h, "center")
    except DECODE_ERRORS:
        raise UserError("the upload is not a readable image; choose a PNG or JPEG file") from None
    import torchvision.transforms.functional as TF

    return to_float(TF.pil_to_tensor(img))  # [C, H, W]


# ------------------------------------------------------------------------------ the app
def create_app(session: Session) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD + 64 * 1024  # the form around the file
    app.json.sort_keys = False

    @app.errorhandler(UserError)
    def _user_error(e: UserError):
        return jsonify(error=str(e)), 400

    @app.errorhandler(FileNotFoundError)
    def _no_file(e: FileNotFoundError):
        return jsonify(error="no such file in the run folder"), 404

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if e.code == 413:
            msg = f"the upload is larger than {MAX_UPLOAD // 2**20} MB; pick a smaller image"
        else:
            msg = f"{e.name}: {' '.join((e.description or '').split())[:200]}"
        return jsonify(error=msg), e.code

    @app.errorhandler(Exception)
    def _failed(e: Exception):
        if _out_of_memory(e):
            return jsonify(error="out of memory; ask for fewer samples"), 400
        log.error("explore: %s", "".join(traceback.format_exception(e)))
        return jsonify(error=f"the request failed ({type(e).__name__}); see the terminal"), 500

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def index():
        return send_file(STATIC / "index.html")

    @app.get("/api/info")
    def info():
        return jsonify(_info(session))

    @app.get("/api/metrics")
    def metrics():
        offset = int_arg("offset", 0, 0, 2**62)
        rows, end = read_metrics_from(session.run_dir / "metrics.jsonl", offset)
        return jsonify(rows=rows, offset=end, restart=offset > 0 and end < offset)

    @app.get("/files/<path:name>")
    def files(name: str):
        path = run_file(session.run_dir, name)
        return send_file(path, mimetype=SERVED[path.suffix.lower()], max_age=0)

    @app.get("/api/grid")
    def grid():
        per_class = bool_arg("per_class")
        n = int_arg("n", 64, 1, MAX_PER_CLASS if per_class else MAX_GRID)
        psi = float_arg("psi", 1.0, 0.0, 1.0)
        seed = int_arg("seed", 0, 0, MAX_SEED)
        return jsonify(session.grid(seed, n, psi, class_arg(session), per_class))

    @app.get("/api/interpolate")
    def interpolate():
        a, b = pick_arg(session, "a_"), pick_arg(session, "b_")
        steps = int_arg("steps", 10, 2, MAX_STEPS)
        mode = choice_arg("mode", "slerp", ("lerp", "slerp"))
        return jsonify(session.interpolate(a, b, steps, mode, space_arg(session)))

    @app.get("/api/edit")
    def edit():
        pick = pick_arg(session)
        target = int_arg("target", None, 0, 999)
        if target is None:
            raise UserError("target is missing; choose the class to edit towards")
        mode = choice_arg("mode", "optimize", ("optimize", "direction"))
        steps = int_arg("steps", 100, 1, MAX_EDIT_STEPS)
        return jsonify(session.edit(pick, target, mode, space_arg(session), steps))

    @app.get("/api/mix")
    def mix():
        if not session.describe().get("mapping"):
            raise UserError("style mixing needs a StyleGAN generator (a mapping network)")
        a, b = pick_arg(session, "a_"), pick_arg(session, "b_")
        group = choice_arg("group", "coarse", ("coarse", "middle", "fine"))
        noise = int_arg("noise_seed", None, 0, MAX_SEED)
        return jsonify(session.mix(a, b, group, noise))

    @app.get("/api/test_images")
    def test_images():
        domain = choice_arg("domain", "A", ("A", "B"))
        return jsonify(session.test_images(domain, int_arg("n", 16, 1, 64)))

    @app.route("/api/translate", methods=["GET", "POST"])
    def translate():
        directions = tuple(sorted(session.translators()))
        direction = choice_arg("direction", directions[0], directions)
        shape = session.translators()[direction].shape
        if request.method == "POST":
            image = uploaded_image(shape)
        else:
            if session.loaders.test_images is None:
                raise UserError("this run has no test images; upload an image instead")
            index = int_arg("index", 0, 0, 63)
            domain = "A" if direction == "AtoB" else "B"
            image = session.loaders.test_images(domain, index + 1)[index]
        return jsonify(session.translate(direction, image))

    @app.get("/api/toy")
    def toy():
        step = int_arg("step", None, 0, 2**40)
        if step is None:
            raise UserError("step is missing; choose a saved step")
        return jsonify(session.toy(step))

    return app


def _out_of_memory(e: BaseException) -> bool:
    text = str(e)
    return isinstance(e, MemoryError) or "out of memory" in text or "can't allocate" in text
