"""`a2world rig list|check`: what is connected, and whether every device delivers data at its rate.

`list` shows the RealSense devices on the USB bus and the cameras, arms and grippers configured in
config/rig.yaml (with whether each camera serial is present). `check` connects the whole rig, reads
every device for a few seconds without commanding any motion and reports per-device rates, drops and
faults; it exits non-zero if a device is missing, faulted or slower than its required rate.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rig.factory import Rig

EXIT_OK = 0
EXIT_DEVICE = 1
EXIT_CONFIG = 2

LIST_HELP = """\
Show the RealSense cameras connected to this machine (serial, name, product line, firmware, USB
type) and the devices configured in the rig config. Copy a connected serial into the `cameras:`
section of config/rig.yaml to assign it to front / wrist_left / wrist_right.
"""

CHECK_HELP = """\
Connect every configured device, read it for --seconds without moving anything, and report per
device: frames/s and dropped frames for cameras, state updates/s for arms and grippers, faults.
Exits 0 when every device is present and at least --tolerance x its required rate (cameras 30 Hz,
arm state 100 Hz), 1 otherwise, 2 for a configuration error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rig",
        help="list and check the rig's devices (cameras, arms, grippers)",
        description="Inspect the rig: `list` what is connected and configured, `check` that it all streams.",
    )
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="rig_command", metavar="SUBCOMMAND")

    p_list = sub.add_parser(
        "list",
        help="connected RealSense devices and configured devices",
        description=LIST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_list.add_argument("--config", default="rig.yaml", help="rig config name or path (default: rig.yaml)")
    p_list.add_argument("--policy-config", default="policy.yaml",
                        help="executor + guard settings checked against the rig (default: policy.yaml)")
    p_list.add_argument("--calibration", default="calibration.yaml",
                        help="calibrated transforms checked for sanity (default: calibration.yaml)")
    p_list.set_defaults(func=cmd_list)

    p_check = sub.add_parser(
        "check",
        help="read every device for a few seconds and report rates and faults",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_check.add_argument("--config", default="rig.yaml", help="rig config name or path (default: rig.yaml)")
    p_check.add_argument("--rig", choices=("real", "sim"), default="real", help="real hardware or the MuJoCo twin")
    p_check.add_argument("--seconds", type=float, default=3.0, help="how long to read the devices (default: 3)")
    p_check.add_argument(
        "--tolerance",
        type=float,
        default=0.9,
        help="fraction of the required rate a device must reach (default: 0.9)",
    )
    p_check.set_defaults(func=cmd_check)


# ------------------------------------------------------------------------------------------- list


def _sections(config: str) -> dict[str, dict[str, Any]]:
    from rig.config import load_yaml, node_params

    data = load_yaml(config)
    shared = node_params(data, "/**")
    return {
        section: {k: v for k, v in node_params(data, section).items() if not (k in shared and v == shared[k])}
        for section in ("cameras", "arms", "grippers")
    }


def validate_configs(rig_config: str, policy_config: str = "policy.yaml",
                     calibration: str = "calibration.yaml") -> None:
    """Parse every safety-relevant setting the way the drivers, the executor and the guard will, and
    check the cross-references (watched cameras and guarded arms exist on the rig); ConfigError otherwise."""
    from calibration.transforms import load_calibration
    from rig.config import ConfigError, config_path, load_yaml, node_params
    from rig.drivers.flexiv import FlexivArmConfig
    from rig.executor import ExecutorConfig
    from rig.safety import GuardConfig

    path = config_path(rig_config)
    if not load_yaml(rig_config):
        raise ConfigError(f"{path}: empty, expected the cameras, arms and grippers sections (see config/rig.yaml)")
    sections = _sections(rig_config)
    if not sections["arms"]:
        raise ConfigError(f"{path}: no arms configured (section arms.ros__parameters)")
    for name, entry in sections["arms"].items():
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path} arms.{name}: {entry!r}, expected a mapping")
        FlexivArmConfig.from_dict(name, entry, where=f"{path} arms.{name}")
    try:
        from rig.drivers.realsense import RealSenseConfig
    except ImportError:
        RealSenseConfig = None  # cameras are then checked by name only
    for name, entry in sections["cameras"].items():
        if RealSenseConfig is not None:
            RealSenseConfig.from_dict(name, entry, where=f"{path} cameras.{name}")
    from rig.drivers.robotiq import RobotiqConfig

    for name, entry in sections["grippers"].items():
        if isinstance(entry, Mapping) and entry.get("type") == "robotiq_modbus":
            RobotiqConfig.from_dict(name, entry)
    policy_path = config_path(policy_config)
    params = node_params(load_yaml(policy_config), "arms")
    for key in ("guard", "executor"):
        if not isinstance(params.get(key), Mapping):
            raise ConfigError(f"{policy_path}: missing mapping {key!r} in the /** or arms parameters")
    ExecutorConfig.from_mapping(params["executor"], f"{policy_path} executor")
    guard = GuardConfig.from_mapping(params["guard"], f"{policy_path} guard")
    guard.check_sources(sections["cameras"], sections["arms"], f"{policy_path} guard")
    load_calibration(calibration)


def cmd_list(args: argparse.Namespace) -> int:
    from rig.config import ConfigError, config_path

    try:
        path = config_path(args.config)
        validate_configs(args.config, args.policy_config, args.calibration)
        sections = _sections(args.config)
    except ConfigError as exc:
        print(f"error: {exc}")
        return EXIT_CONFIG

    connected: dict[str, Any] = {}
    try:
        from rig.drivers.realsense import list_devices

        infos = list_devices()
    except ImportError as exc:
        print(f"RealSense: pyrealsense2 is not available ({exc}); cannot list cameras")
        infos = []
    except RuntimeError as exc:
        print(f"RealSense: enumeration failed ({exc})")
        infos = []
    else:
        if not infos:
            print("RealSense: no RealSense devices connected")
        else:
            print(f"RealSense: {len(infos)} device(s) connected")
            print(f"  {'serial':<16} {'name':<28} {'line':<6} {'firmware':<12} usb")
            for info in infos:
                print(f"  {info.serial:<16} {info.name:<28} {info.product_line:<6} {info.firmware:<12} {info.usb_type}")
    connected = {info.serial: info for info in infos}

    print(f"\nConfigured in {path}:")
    print("  cameras:")
    for name, entry in sections["cameras"].items():
        entry = entry if isinstance(entry, Mapping) else {}
        serial = str(entry.get("serial", "?"))
        state = f"present ({connected[serial].name})" if serial in connected else "NOT CONNECTED"
        print(f"    {name:<12} {entry.get('model', '?'):<6} serial {serial:<16} {state}")
    print("  arms:")
    for name, entry in sections["arms"].items():
        entry = entry if isinstance(entry, Mapping) else {}
        print(f"    {name:<12} {entry.get('type', 'flexiv'):<15} serial {entry.get('serial', '?')}")
    print("  grippers:")
    for name, entry in sections["grippers"].items():
        entry = entry if isinstance(entry, Mapping) else {}
        where = entry.get("port") or entry.get("device_name") or "?"
        print(f"    {name:<12} {entry.get('type', '?'):<15} {where}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------ check


@dataclass
class DeviceReport:
    """Outcome of `check` for one device."""

    kind: str
    name: str
    ok: bool = True
    rate_hz: float = 0.0
    required_hz: float = 0.0
    dropped: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def check_rig(rig: Rig, seconds: float, tolerance: float = 0.9) -> list[DeviceReport]:
    """Connect each device, read it for `seconds` without commanding motion, disconnect, report."""
    from rig.conventions import ARM_STATE_MIN_HZ, CAMERA_FPS
    from rig.drivers.base import Arm, Camera, Gripper

    reports: dict[str, DeviceReport] = {}
    live: list[tuple[DeviceReport, Any]] = []
    required = {"camera": float(CAMERA_FPS), "arm": ARM_STATE_MIN_HZ, "gripper": 0.0}
    for kind, name, device in rig.devices():
        report = reports[f"{kind}/{name}"] = DeviceReport(kind, name, required_hz=required[kind])
        try:
            device.connect()
        except Exception as exc:
            report.fail(f"cannot connect: {exc}")
            continue
        live.append((report, device))

    cameras = [(r, d) for r, d in live if isinstance(d, Camera)]
    stateful = [(r, d) for r, d in live if isinstance(d, Arm | Gripper)]
    start = {id(d): d.stats() for _, d in cameras}
    seen: dict[int, set[float]] = {id(d): set() for _, d in live}
    t0 = time.monotonic()
    next_camera_poll = t0
    while live and time.monotonic() - t0 < seconds:
        for report, device in stateful:
            if not report.ok:
                continue
            try:
                state = device.read_state()
                seen[id(device)].add(state.t)
                if isinstance(device, Arm) and device.in_fault():
                    report.fail("arm reports a fault")
                elif getattr(state, "fault", False):
                    report.fail("device reports a fault")
            except Exception as exc:
                report.fail(f"read_state failed: {exc}")
        if time.monotonic() >= next_camera_poll:  # frame times seen through the interface, at 200 Hz
            next_camera_poll += 0.005
            for report, device in cameras:
                if not report.ok:
                    continue
                try:
                    frame = device.latest()
                except Exception as exc:
                    report.fail(f"latest() failed: {exc}")
                    continue
                if frame is not None:
                    seen[id(device)].add(frame.t)
        time.sleep(0.001)
    elapsed = max(time.monotonic() - t0, 1e-9)

    for report, device in live:
        if isinstance(device, Camera):
            stats, before = device.stats(), start[id(device)]
            counted = stats.samples - before.samples
            # a driver that counts samples gives the exact rate; otherwise distinct frame times polled
            report.rate_hz = (counted if counted > 0 else len(seen[id(device)])) / elapsed
            report.dropped = stats.dropped - before.dropped
            if stats.errors > before.errors:
                report.problems.append(f"{stats.errors - before.errors} capture error(s)")
            reopened = stats.extra.get("reconnects", 0.0) - before.extra.get("reconnects", 0.0)
            if reopened:
                report.problems.append(f"{int(reopened)} re-open(s)")
        else:
            report.rate_hz = len(seen[id(device)]) / elapsed
        if report.ok and report.required_hz and report.rate_hz < tolerance * report.required_hz:
            report.fail(f"rate {report.rate_hz:.1f} Hz below {tolerance:.0%} of {report.required_hz:.0f} Hz")
        try:
            device.disconnect()
        except Exception as exc:
            report.problems.append(f"disconnect failed: {exc}")
    return list(reports.values())


def cmd_check(args: argparse.Namespace) -> int:
    from rig.config import ConfigError
    from rig.drivers.base import DeviceError
    from rig.factory import build_rig

    if args.seconds <= 0 or not 0 < args.tolerance <= 1:
        print(f"error: --seconds {args.seconds} must be > 0 and --tolerance {args.tolerance} in (0, 1]")
        return EXIT_CONFIG
    try:
        # check reads devices as they stream, so the twin runs paced to the host clock
        rig = build_rig(args.config, rig=args.rig, sim_overrides={"clock": "realtime"})
    except ConfigError as exc:
        print(f"error: {exc}")
        return EXIT_CONFIG
    except DeviceError as exc:
        print(f"FAIL {exc}")
        return EXIT_DEVICE
    print(f"checking the {args.rig} rig for {args.seconds:g} s (no motion is commanded)")
    reports = check_rig(rig, args.seconds, args.tolerance)
    for r in reports:
        rate = f"{r.rate_hz:7.1f} Hz" if r.ok or r.rate_hz else " " * 10
        need = f"(>= {args.tolerance * r.required_hz:.0f})" if r.required_hz else ""
        dropped = f" dropped {r.dropped}" if r.kind == "camera" and r.ok else ""
        notes = "; ".join(r.problems)
        print(f"{'OK  ' if r.ok else 'FAIL'} {r.kind:<8} {r.name:<12} {rate} {need:<8}{dropped}  {notes}".rstrip())
    failed = [r for r in reports if not r.ok]
    if not reports:
        print("no devices configured")
        return EXIT_OK
    print(f"{len(reports) - len(failed)}/{len(reports)} devices OK")
    return EXIT_DEVICE if failed else EXIT_OK
