"""Offscreen pictures of MuJoCo models: OpenGL when it works, a ray-cast picture otherwise.

`gl_backend()` picks the OpenGL backend once per process. A `MUJOCO_GL` the user set is
kept; otherwise "egl", then "osmesa" are tried, each in a short subprocess (a broken GL
stack can crash the process that tries it). The first that renders is written to
`MUJOCO_GL`, and MuJoCo's GL context module is re-read, since `import mujoco` fixed its
choice already. When none works the answer is "raycast": `render_model` then draws with
`raycast_render`, a pure-numpy renderer built on `mujoco.mj_multiRay` (geom colours,
head-light shading, a checkered floor; no textures, shadows or transparency).

Pictures are (H, W, 3) uint8 arrays. `data` must hold kinematics (after `mj_forward`).
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

GL_BACKENDS = ("egl", "osmesa")
DEFAULT_AZIMUTH = 135.0  # degrees
DEFAULT_ELEVATION = -20.0  # degrees
VISIBLE_GROUPS = np.array([1, 1, 1, 0, 0, 0], np.uint8)  # the Renderer's default geom groups
_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=".1"/></worldbody></mujoco>')
d = mujoco.MjData(m)
r = mujoco.Renderer(m, 8, 8)
r.update_scene(d)
r.render()
r.close()
"""
_GL_MODULES = {"egl": "mujoco.egl", "osmesa": "mujoco.osmesa", "glfw": "mujoco.glfw"}


def _probe(backend: str) -> bool:
    """True when a fresh Python process renders a tiny model with MUJOCO_GL=backend."""
    env = {**os.environ, "MUJOCO_GL": backend}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def gl_backend() -> str:
    """The OpenGL backend offscreen rendering uses ("egl", "osmesa", ...) or "raycast"."""
    user = os.environ.get("MUJOCO_GL", "").strip().lower()
    for backend in [user] if user else GL_BACKENDS:
        if _probe(backend):
            os.environ["MUJOCO_GL"] = backend
            from mujoco.rendering.classic import gl_context

            module = getattr(getattr(gl_context, "GLContext", None), "__module__", "")
            if not module.startswith(_GL_MODULES.get(backend, module)):
                importlib.reload(gl_context)  # pick up the backend chosen after import
            log.info("offscreen rendering with MUJOCO_GL=%s", backend)
            return backend
    tried = user or ", ".join(GL_BACKENDS)
    log.warning("no OpenGL backend works (tried %s); using the ray-cast renderer", tried)
    return "raycast"


def free_camera(
    model: mujoco.MjModel,
    *,
    distance: float | None = None,
    azimuth: float = DEFAULT_AZIMUTH,
    elevation: float = DEFAULT_ELEVATION,
    lookat: np.ndarray | None = None,
    data: mujoco.MjData | None = None,
) -> mujoco.MjvCamera:
    """A free camera that frames the robot where `data` has it (the geoms of every body but
    the world), or `model.stat.center` at 1.5 x `model.stat.extent` without `data`."""
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    center, radius = model.stat.center, 0.75 * model.stat.extent
    robot = model.geom_bodyid > 0
    if data is not None and robot.any():
        pos, rb = data.geom_xpos[robot], np.minimum(model.geom_rbound[robot], 1.0)
        lo, hi = (pos - rb[:, None]).min(0), (pos + rb[:, None]).max(0)
        center, radius = (lo + hi) / 2, max(0.5 * np.linalg.norm(hi - lo), 0.15)
    cam.lookat[:] = center if lookat is None else lookat
    cam.distance = 2.2 * radius if distance is None else distance
    cam.azimuth, cam.elevation = azimuth, elevation
    return cam


def render_model(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    *,
    width: int = 640,
    height: int = 480,
    camera: str | int | None = None,
    distance: float | None = None,
    azimuth: float = DEFAULT_AZIMUTH,
    elevation: float = DEFAULT_ELEVATION,
    backend: str | None = None,
) -> np.ndarray:
    """An (height, width, 3) uint8 picture of `data` from a model camera or a free camera.

    `camera` names or indexes a camera of the model; None frames the whole model (see
    `free_camera`). `backend="raycast"` forces the ray-cast renderer; by default the
    result of `gl_backend()` decides.
    """
    use = backend or gl_backend()
    if use == "raycast":
        return raycast_render(
            model, data, width=width, height=height, camera=camera,
            distance=distance, azimuth=azimuth, elevation=elevation,
        )  # fmt: skip
    vis = model.vis.global_
    saved = vis.offwidth, vis.offheight
    vis.offwidth, vis.offheight = max(saved[0], width), max(saved[1], height)
    try:
        renderer = mujoco.Renderer(model, height=height, width=width)
    finally:
        vis.offwidth, vis.offheight = saved
    try:
        if camera is None:
            cam = free_camera(
                model, distance=distance, azimuth=azimuth, elevation=elevation, data=data
            )
            renderer.update_scene(data, camera=cam)
        else:
            renderer.update_scene(data, camera=camera)
        return renderer.render().copy()
    finally:
        renderer.close()


def _camera_frame(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    camera: str | int | mujoco.MjvCamera,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Camera position, forward and up unit vectors, and vertical field of view (deg)."""
    if isinstance(camera, mujoco.MjvCamera):
        az, el = math.radians(camera.azimuth), math.radians(camera.elevation)
        fwd = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])
        pos = np.asarray(camera.lookat) - camera.distance * fwd
        return pos, fwd, up, float(model.vis.global_.fovy)
    cid = model.camera(camera).id
    mat = data.cam_xmat[cid].reshape(3, 3)
    return data.cam_xpos[cid].copy(), -mat[:, 2], mat[:, 1], float(model.cam_fovy[cid])


def raycast_render(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    *,
    width: int = 320,
    height: int = 240,
    camera: str | int | mujoco.MjvCamera | None = None,
    distance: float | None = None,
    azimuth: float = DEFAULT_AZIMUTH,
    elevation: float = DEFAULT_ELEVATION,
) -> np.ndarray:
    """A picture made without OpenGL: one `mj_multiRay` ray per pixel, shaded in numpy.

    Each hit takes its geom's colour (the material's when the geom keeps the default
    rgba), lit by a head light and a light from above; planes get a 0.5 m checker.
    """
    if camera is None:
        camera = free_camera(
            model, distance=distance, azimuth=azimuth, elevation=elevation, data=data
        )
    pos, fwd, up, fovy = _camera_frame(model, data, camera)
    right = np.cross(fwd, up)
    half_h = math.tan(math.radians(fovy) / 2)
    half_w = half_h * width / height
    u = ((np.arange(width) + 0.5) / width * 2 - 1) * half_w
    v = (1 - (np.arange(height) + 0.5) / height * 2) * half_h
    rays = fwd + u[None, :, None] * right + v[:, None, None] * up  # (H, W, 3)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    n = width * height
    geom = np.empty(n, np.int32)
    dist = np.empty(n)
    normal = np.zeros(3 * n)
    mujoco.mj_multiRay(
        model, data, pos, np.ascontiguousarray(rays.reshape(-1)), VISIBLE_GROUPS, 1, -1,
        geom, dist, normal, n, mujoco.mjMAXVAL,
    )  # fmt: skip
    rays = rays.reshape(n, 3)
    normal = normal.reshape(n, 3)
    # Sky: a vertical gradient, so that misses are not one flat colour.
    sky = 0.55 + 0.35 * np.clip(rays[:, 2:3], 0, 1)
    image = np.broadcast_to(sky * np.array([0.75, 0.85, 1.0]), (n, 3)).copy()
    hit = geom >= 0
    if hit.any():
        g = geom[hit]
        rgba = model.geom_rgba[g].copy()
        matid = model.geom_matid[g]
        default = np.all(np.isclose(rgba, [0.5, 0.5, 0.5, 1.0]), axis=1) & (matid >= 0)
        if default.any():
            mats = matid[default]
            colour = model.mat_rgba[mats].copy()
            # A textured material's rgba multiplies its texture: stand in a mid grey for it.
            textured = model.mat_texid[mats, int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] >= 0
            colour[textured, :3] *= 0.45
            rgba[default] = colour
        nrm = normal[hit]
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
        view = np.abs(np.sum(nrm * rays[hit], axis=1))
        light = 0.3 + 0.5 * view + 0.2 * np.clip(nrm[:, 2], 0, 1)
        point = pos + rays[hit] * dist[hit, None]
        plane = model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE
        checker = (np.floor(point[:, 0] / 0.5) + np.floor(point[:, 1] / 0.5)) % 2
        light = np.where(plane, light * (0.8 + 0.2 * checker), light)
        fog = np.exp(-dist[hit] / (20 * max(model.stat.extent, 1e-3)))
        image[hit] = rgba[:, :3] * (light * fog)[:, None] + image[hit] * (1 - fog)[:, None]
    return (np.clip(image, 0, 1) * 255).astype(np.uint8).reshape(height, width, 3)


def render_grid(images: list[np.ndarray], labels: list[str], cols: int) -> np.ndarray:
    """Tile `images` row by row, `cols` to a row, each with its label at the top left.

    Smaller images are padded (dark grey) to the largest height and width.
    """
    if not images:
        raise ValueError("render_grid: no images")
    if len(labels) != len(images):
        raise ValueError(f"render_grid: {len(images)} images but {len(labels)} labels")
    if cols < 1:
        raise ValueError(f"render_grid: cols={cols}, expected >= 1")
    cell_h = max(img.shape[0] for img in images)
    cell_w = max(img.shape[1] for img in images)
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    grid = np.full((rows * cell_h, cols * cell_w, 3), 40, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        rgb = np.asarray(img)[..., :3].astype(np.uint8)
        grid[r * cell_h : r * cell_h + rgb.shape[0], c * cell_w : c * cell_w + rgb.shape[1]] = rgb
    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, label in enumerate(labels):
        r, c = divmod(i, cols)
        x, y = c * cell_w + 4, r * cell_h + 4
        box = draw.textbbox((x, y), label, font=font)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((x, y), label, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 picture as PNG, creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, np.uint8)).save(path, format="PNG")
    return path
