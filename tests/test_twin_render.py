"""Twin cameras: three 480x640 views, and a marker sphere lands where the intrinsics and pose predict."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from rig.conventions import CAMERA_NAMES
from rig.sim.camera_model import fovy_deg, intrinsics_at, project
from rig.sim.twin import Twin


class _Marker:
    """A red 1 cm mocap sphere that tests place anywhere (a minimal TaskSpec)."""

    name = "marker"
    instruction = "look at the marker"

    def build(self, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="marker", mocap=True, pos=[0, 0, -1])
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.01, 0, 0], rgba=[1, 0, 0, 1],
                      contype=0, conaffinity=0)

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        data.mocap_pos[0] = [0, 0, -1]

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return False

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        return 0.0


def _red_centroid(image: np.ndarray) -> np.ndarray:
    mask = (image[..., 0] > 120) & (image[..., 1] < 50) & (image[..., 2] < 50)
    assert mask.sum() > 4, "marker not visible"
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel centres, OpenCV convention


@pytest.fixture(scope="module")
def full_twin() -> Twin:
    return Twin(task=_Marker(), render_size=(480, 640))


def test_three_views_at_480x640(full_twin: Twin) -> None:
    obs = full_twin.reset(0)
    assert set(obs.frames) == set(CAMERA_NAMES)
    for cam, frame in obs.frames.items():
        assert frame.color.shape == (480, 640, 3) and frame.color.dtype == np.uint8
        assert frame.color.std() > 5, f"{cam} image is flat"
        assert frame.t == obs.t
    assert obs.task == "look at the marker"
    assert not np.array_equal(obs.frames["front"].color, obs.frames["wrist_left"].color)


@pytest.mark.parametrize(
    ("camera", "offset"),
    [("front", (0.08, -0.05, 0.9)), ("wrist_left", (-0.04, 0.03, 0.25)), ("wrist_right", (0.03, -0.04, 0.22))],
)
def test_marker_projects_to_predicted_pixel(full_twin: Twin, camera: str, offset: tuple[float, float, float]) -> None:
    twin = full_twin
    twin.reset_state(0)
    T = twin.camera_pose_world(camera)
    point = T[:3, :3] @ np.asarray(offset) + T[:3, 3]
    twin.data.mocap_pos[0] = point
    mujoco.mj_forward(twin.model, twin.data)
    image = twin.render()[camera]
    K = twin.intrinsics(camera).matrix()
    predicted = project(K, T, point)[0]
    measured = _red_centroid(image)
    assert np.linalg.norm(predicted - measured) < 2.0, f"{camera}: predicted {predicted}, measured {measured}"


def test_intrinsics_follow_config_and_scale() -> None:
    twin = Twin(render_size=(240, 320))
    front = twin.intrinsics("front")
    assert (front.width, front.height) == (320, 240)
    assert front.fy == pytest.approx(twin.cfg.number("cameras.front.fy") / 2)
    assert front.cx == 160 and front.cy == 120
    cam = twin.model.camera("rig/front")
    assert cam.fovy[0] == pytest.approx(fovy_deg(twin.cfg.number("cameras.front.fy")))
    assert intrinsics_at(615.0, (480, 640)).fx == pytest.approx(615.0)
    images = twin.render()
    assert all(img.shape == (240, 320, 3) for img in images.values())


def test_wrist_camera_moves_with_flange(full_twin: Twin) -> None:
    twin = full_twin
    twin.reset_state(0)
    before = twin.camera_pose_world("wrist_left")
    twin.set_arm_target_world("left", np.r_[0.1, 0.0, 0.15, 1.0, 0.0, 0.0, 0.0])
    twin.step(2.0)
    after = twin.camera_pose_world("wrist_left")
    flange_motion = twin.tcp_pose_world("left")[:3] - np.array([0.0, 0.1, 0.25])
    assert np.linalg.norm(after[:3, 3] - before[:3, 3]) > 0.5 * np.linalg.norm(flange_motion)
    assert np.allclose(twin.camera_pose_world("front"), full_twin.camera_pose_world("front"))
