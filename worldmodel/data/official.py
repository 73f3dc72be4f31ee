"""The official A2World sample format: `actions.npz` (key `actions`, (T, 14) model actions, or LIBERO servo
actions (T, 2, 7)) plus one image per view with its view id. Every bad input raises `SampleError` naming
the file, the field, what was found and what was expected."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rig.conventions import MODEL_ACTION_DIM
from worldmodel.actions import ActionError, libero_servo_to_actions

ACTION_FORMATS = ("auto", "precomputed", "libero-servo")
"""`auto`/`precomputed`: a (T, 14) array used as it is (the release's `pretrained` examples);
`libero-servo`: LIBERO servo actions converted with `worldmodel.actions.libero_servo_to_actions`."""


class SampleError(ValueError):
    """A sample file is missing or malformed; the message names file, field, shape/value and expectation."""


def load_actions_npz(path: str | os.PathLike[str], action_format: str = "auto", key: str = "actions",
                     min_steps: int = 20) -> NDArray[np.float64]:
    """Model actions (T, 14), T >= `min_steps`, from an `actions.npz` in the release's layout."""
    file = Path(path)
    if action_format not in ACTION_FORMATS:
        raise SampleError(f"action format {action_format!r}: expected one of {ACTION_FORMATS}")
    if not file.is_file():
        raise SampleError(f"{file}: no such file")
    try:
        with np.load(file, allow_pickle=False) as data:
            if key not in data.files:
                raise SampleError(f"{file}: no field {key!r} (fields: {data.files})")
            arr = np.asarray(data[key])
    except (OSError, ValueError) as exc:
        raise SampleError(f"{file}: not a readable .npz without pickled objects ({exc})") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise SampleError(f"{file}: field {key!r} has dtype {arr.dtype}, expected numbers")
    if action_format == "libero-servo":
        try:
            actions = libero_servo_to_actions(arr)
        except ActionError as exc:
            raise SampleError(f"{file}: field {key!r}: {exc}") from None
    elif arr.ndim != 2 or arr.shape[1] != MODEL_ACTION_DIM:
        raise SampleError(f"{file}: field {key!r} has shape {arr.shape}, expected (T, {MODEL_ACTION_DIM}) model "
                          "actions (per arm dx dy dz droll dpitch dyaw gripper; use --action-format libero-servo "
                          "for LIBERO (T, 2, 7) servo actions)")
    else:
        actions = arr.astype(np.float64)
    if actions.shape[0] < min_steps:
        raise SampleError(f"{file}: field {key!r} has {actions.shape[0]} actions, need at least {min_steps} "
                          "(one 21-frame chunk)")
    if not np.isfinite(actions).all():
        raise SampleError(f"{file}: field {key!r} contains non-finite values")
    return actions


def load_image(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """An image file as RGB uint8 (H, W, 3)."""
    import cv2

    file = Path(path)
    if not file.is_file():
        raise SampleError(f"{file}: no such image file")
    bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SampleError(f"{file}: not a readable image (png/jpg)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def load_official_sample(images: Sequence[str | os.PathLike[str]], view_ids: Sequence[int],
                         actions: str | os.PathLike[str], action_format: str = "auto"
                         ) -> tuple[dict[int, NDArray[np.uint8]], NDArray[np.float64]]:
    """({view id: RGB image}, actions (T, 14)) from per-view image files, their ids and an actions.npz."""
    if len(images) != len(view_ids):
        raise SampleError(f"{len(images)} images but {len(view_ids)} view ids; give one id per image")
    if len(set(view_ids)) != len(view_ids):
        raise SampleError(f"view ids {list(view_ids)} repeat; each view needs its own id (0-3)")
    bad = [v for v in view_ids if not 0 <= int(v) <= 3]
    if bad:
        raise SampleError(f"view ids {bad} outside 0..3 (0/1 wrist cameras, 2/3 third-person cameras)")
    return ({int(v): load_image(p) for v, p in zip(view_ids, images)},
            load_actions_npz(actions, action_format))
