"""Body cards, guessing with evidence, URDF conventions, the gain rule and the physical
checks, on the vendor-style fixtures of tests/assets/robots and on every generated class."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from xembody.sim import bodies
from xembody.sim.bodies import gains
from xembody.sim.bodies.card import (
    BodyCard,
    CardError,
    Gains,
    card_from_dict,
    read_card,
    write_card,
)
from xembody.sim.bodies.check import run_checks
from xembody.sim.bodies.loader import load_report

ROBOTS = Path(__file__).parent / "assets" / "robots"
ARM6 = ROBOTS / "fixture_arm_description" / "urdf" / "arm6.urdf"
QUAD = ROBOTS / "fixture_quad_description" / "urdf" / "quad.urdf"
QUAD_CARD = QUAD.with_suffix(".yaml")
PAN_TILT = ROBOTS / "dae_robot" / "urdf" / "pan_tilt.urdf"
ARM7 = ROBOTS / "mjcf" / "arm7_armature.xml"
FEET = ["FL_calf_foot", "FR_calf_foot", "RL_calf_foot", "RR_calf_foot"]


@pytest.fixture(autouse=True)
def _mesh_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XEMBODY_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# --- the card ---------------------------------------------------------------------------
def test_card_round_trip(tmp_path: Path) -> None:
    card = BodyCard(
        body_class="quadruped", base="floating", feet=("a_foot", "b_foot"), imu="imu_link",
        default_pose={"*_thigh": 0.8}, exclude=("grip*",), spawn_height=0.3,
        gains=Gains(frequency_hz=8.0, joints={"*_calf": {"kp": 40.0, "kd": 1.0}}),
    )  # fmt: skip
    path = write_card(card, tmp_path / "r.yaml", notes={"class": "4 feet"})
    assert "# class: 4 feet" in path.read_text() and "class: quadruped" in path.read_text()
    back = read_card(path)
    assert back == BodyCard(**{**card.__dict__, "path": str(path)})
    assert back.pose_for("FL_thigh") == 0.8 and back.pose_for("FL_calf") is None
    assert back.gains_for("RR_calf") == {"kp": 40.0, "kd": 1.0} and back.excluded("gripper")


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"class": "robot"}, r"r\.yaml: class: 'robot' is not valid; set it to one of arm, "),
        ({"base": "flying"}, r"base: 'flying' .* fixed or floating"),
        ({"klass": "arm"}, r"unknown field 'klass'; the card fields are .*class"),
        ({"gains": {"rule": "kp_per_kg"}}, r"gains\.rule: 'kp_per_kg' .* natural_frequency"),
        ({"gains": {"joints": {"j*": {"kd": 1}}}}, r"gains\.joints\.j\*: .* \{kp: "),
        ({"default_pose": {"j1": "up"}}, r"default_pose\.j1: 'up' .* a number"),
        ({"feet": 3}, r"feet: 3 .* a list of names"),
        ({"armature": {"*_calf_joint": -0.01}}, r"armature\.\*_calf_joint: -0\.01 .* >= 0"),
        ({"armature": 0.01}, r"armature: 0\.01 .* a mapping of joint name"),
    ],
)
def test_card_errors_name_file_field_value_and_fix(doc: dict, match: str) -> None:
    with pytest.raises(CardError, match=match):
        card_from_dict(doc, "r.yaml")


# --- decisions on the fixtures ------------------------------------------------------------
def _decided(report) -> dict:
    return {k: d.value for k, d in report.decisions.items()}


def test_urdf_arm_fixed_base_tool0_package_meshes() -> None:
    r = load_report(ARM6)
    d, emb = _decided(r), r.embodiment
    assert (d["base"], d["class"], d["ee"], d["feet"]) == ("fixed", "arm", "tool0", [])
    assert r.decisions["ee"].how == "guess" and "flange" in r.decisions["ee"].evidence
    assert emb.body_class == "arm" and not emb.floating_base and emb.num_actions == 6
    assert emb.sensors.ee_site == "tool0" and emb.sensors.imu_site == "imu"
    model = emb.compile()
    assert model.nmesh == 14  # package:// visual + collision STL meshes
    visual = (model.geom_contype == 0) & (model.geom_conaffinity == 0)
    assert visual.sum() == 7 and (~visual).sum() >= 7  # visual kept, collision collides
    data = mujoco.MjData(model)
    mujoco.mj_forward(
        model, data
    )  # tool0 site at its URDF frame: 0.08+0.1+0.3+0.25+0.06+0.06+0.03+0.02
    assert data.site_xpos[model.site("tool0").id] == pytest.approx([0, 0, 0.90], abs=1e-9)
    assert [j.effort_limit for j in emb.joints] == pytest.approx([60, 60, 30, 10, 10, 10])
    assert [j.velocity_limit for j in emb.joints] == pytest.approx([3.14] * 3 + [6.28] * 3)


def test_urdf_quadruped_floats_spawns_on_its_feet_without_a_card() -> None:
    r = load_report(QUAD, find=False)
    d, emb = _decided(r), r.embodiment
    assert (d["base"], d["class"], d["feet"], d["ee"]) == ("floating", "quadruped", FEET, None)
    assert r.decisions["base"].how == "guess" and "legs" in r.decisions["base"].evidence
    assert d["base_body"] == "trunk" and d["imu"] == "imu_link"
    assert emb.floating_base and emb.body_class == "quadruped" and emb.num_actions == 12
    model = emb.compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    feet_z = [data.site_xpos[model.site(f).id][2] for f in FEET]
    assert np.allclose(feet_z, 0.02 + 0.002, atol=1e-6)  # sphere r=0.02 on the floor
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE


def test_card_beside_the_file_and_options_win() -> None:
    r = load_report(QUAD)  # quad.yaml found beside quad.urdf
    assert r.card.path == str(QUAD_CARD) and r.decisions["class"].how == "card"
    assert r.embodiment.default_pose[:3] == pytest.approx([0.0, 0.8, -1.5])
    r = load_report(QUAD_CARD, feet=["FL_calf_foot", "FR_calf_foot"])  # the card names nothing
    assert r.decisions["feet"].how == "option"  # ... so the file comes from beside it
    with pytest.raises(CardError, match=r"ee: 'gripper' is neither a link .*--ee LINK; frames"):
        load_report(ARM6, ee="gripper")


def test_card_armature_reaches_the_model_and_the_gain_rule() -> None:
    """A URDF cannot hold a motor's reflected rotor inertia; `armature:` in the card
    names it (fnmatch patterns), before compiling, so the natural-frequency gains see it."""
    plain = load_report(QUAD)  # the card beside it: no armature
    doc = yaml.safe_load(QUAD_CARD.read_text())
    doc["armature"] = {"*_joint": 0.01, "*_calf_joint": 0.02}
    r = load_report(QUAD, card=doc)
    model = r.embodiment.compile()
    arm = {model.joint(j).name: model.dof_armature[model.jnt_dofadr[j]] for j in range(1, 13)}
    assert arm["FL_hip_joint"] == pytest.approx(0.01) and arm["RR_calf_joint"] == 0.02
    assert (plain.embodiment.compile().dof_armature == 0).all()  # the file alone: none
    # more inertia at each joint: more damping (kd = 2 zeta I w), kp too where the effort
    # limit does not cap it (the hips' is capped)
    new, old = r.embodiment.joints, plain.embodiment.joints
    assert all(a.kd > b.kd and a.kp >= b.kp for a, b in zip(new, old, strict=True))
    assert sum(a.kp > b.kp for a, b in zip(new, old, strict=True)) == 8
    assert any("armature from the card on 12 joints" in n for n in r.notes)
    with pytest.raises(CardError, match=r"armature: 'knee_\*' matches no joint of quad\.urdf"):
        load_report(QUAD, card={**doc, "armature": {"knee_*": 0.01}})


def test_dae_meshes_are_converted_once_into_the_cache(tmp_path: Path) -> None:
    r = load_report(PAN_TILT)
    assert sum("converted mesh" in n for n in r.notes) == 2
    model = r.embodiment.compile()
    assert model.nmesh == 2 and _decided(r)["class"] == "arm"  # visual = collision file
    assert _decided(r)["ee"] == "camera_link"
    again = load_report(PAN_TILT)  # served from the cache: the same file
    assert again.notes == r.notes


def test_package_path_finds_meshes_moved_elsewhere(tmp_path: Path) -> None:
    urdf = tmp_path / "robot" / "arm6.urdf"
    urdf.parent.mkdir()
    shutil.copy(ARM6, urdf)
    with pytest.raises(ValueError, match=r"arm6\.urdf: mesh 'package://.*--package-path DIR"):
        load_report(urdf)
    emb = load_report(urdf, package_path=[str(ROBOTS)]).embodiment
    assert emb.compile().nmesh == 14


def test_mjcf_arm_with_armature_keeps_its_limits() -> None:
    r = load_report(ARM7)
    d = _decided(r)
    assert (d["base"], d["class"], d["ee"]) == ("fixed", "arm", "attachment_site")
    efforts = [j.effort_limit for j in r.embodiment.joints]
    assert efforts == pytest.approx([87] * 4 + [12] * 3)


def test_excluded_joint_is_welded_at_its_default(tmp_path: Path) -> None:
    card = {"exclude": ["wrist_3_joint"], "default_pose": {"wrist_3_joint": 0.5}}
    r = load_report(ARM6, card=card)
    assert "wrist_3_joint" not in r.embodiment.joint_names and r.embodiment.num_actions == 5
    model = r.embodiment.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    quat = data.xquat[model.body("wrist_3_link").id]  # turned 0.5 rad about y
    assert quat == pytest.approx([math.cos(0.25), 0, math.sin(0.25), 0], abs=1e-6)


# --- the gain rule ------------------------------------------------------------------------
PENDULUM = """<mujoco><option timestep="0.002"/><worldbody><body>
  <joint name="j" axis="0 1 0" armature="{armature}" actuatorfrcrange="-{effort} {effort}"/>
  <geom type="sphere" size="0.01" pos="0 0 -{r}" mass="{m}"/>
</body></worldbody></mujoco>"""


@pytest.mark.parametrize(
    ("m", "r", "armature", "effort", "expect"),
    [
        (0.1, 0.1, 0.05, 100, "inertia"),  # heavy armature: kp = I w^2
        (2.0, 0.05, 0.0, 1000, "load"),  # heavy, little inertia: gravity sets kp
        (2.0, 0.05, 0.0, 0.5, "effort"),  # ... but the motor gives at most 0.5 N m
    ],
)
def test_natural_frequency_rule_by_hand(m, r, armature, effort, expect) -> None:
    model = mujoco.MjModel.from_xml_string(
        PENDULUM.format(m=m, r=r, armature=armature, effort=effort)
    )
    inertia = armature + m * r * r + 2 / 5 * m * 0.01**2  # sphere about the axis
    w = 2 * math.pi * 10
    kp, kd, why = gains.natural_frequency_gains(model, model.qpos0, [0], [effort])
    want = {
        "inertia": inertia * w * w,
        "load": m * 9.81 * r / gains.HOLD_ERROR,  # the horizontal worst case
        "effort": effort / gains.SATURATION_ERROR,
    }[expect]
    assert kp[0] == pytest.approx(want, rel=1e-3)
    assert kd[0] == pytest.approx(2 * math.sqrt(kp[0] * inertia), rel=1e-3)  # zeta = 1


# --- physical checks: fixtures and generated classes ----------------------------------------
@pytest.mark.parametrize(
    ("path", "card"),
    [(ARM6, None), (QUAD, None), (PAN_TILT, None), (ARM7, None),
     (ARM6, {"default_pose": {"shoulder_lift_joint": 1.2, "elbow_joint": 1.0}})],
)  # fmt: skip
def test_checks_pass_on_the_fixtures(path: Path, card: dict | None) -> None:
    emb = load_report(path, card=card).embodiment
    (result,) = run_checks(emb)
    assert result["passed"], result["message"]
    assert result["divergences"] == 0
    if result["name"] == "hold":
        assert result["max_joint_error"] <= 0.05 and result["max_joint_speed"] < 0.1
    else:
        assert abs(result["end_height"] / result["start_height"] - 1) <= 0.15


def test_stand_check_says_when_it_falls() -> None:
    emb = load_report(QUAD, find=False).embodiment  # straight legs, feet behind the hips
    (result,) = run_checks(emb)
    if not result["passed"]:
        assert result["message"].startswith("falls after") and result["fell_after_s"] < 2


@pytest.mark.parametrize(
    ("body_class", "seed"), [(c, 0) for c in bodies.names()] + [("wheeled", 1)]
)  # wheeled seed 1: a differential drive on a free joint
def test_generated_bodies_are_guessed_right_and_pass(body_class, seed, tmp_path: Path) -> None:
    emb = bodies.sample(body_class, seed=seed)
    (result,) = run_checks(emb)
    assert result["passed"], result["message"]
    path = emb.write(tmp_path / f"{body_class}.xml")
    path.with_suffix(".xml.json").unlink()  # as a user's MJCF file: no facts beside it
    d = _decided(load_report(path))
    assert d["class"] == body_class
    assert d["base"] == ("floating" if emb.floating_base else "fixed")
    if body_class in ("quadruped", "humanoid"):
        model = emb.compile()
        feet = [
            model.site(s).name for s in range(model.nsite) if model.site(s).name.endswith("_foot")
        ]
        assert sorted(d["feet"]) == sorted(feet) or len(d["feet"]) == len(feet)
    if body_class == "arm":
        assert d["ee"] == emb.sensors.ee_site


def test_report_is_json_ready() -> None:
    emb = load_report(QUAD).embodiment
    json.dumps(emb.params)
    assert "feet" in emb.params["decisions"]


# --- the CLI: xembody bodies check ---------------------------------------------------------
def test_bodies_check_json_and_written_card(tmp_path: Path, capsys) -> None:
    from xembody.cli import main

    card = tmp_path / "arm6.yaml"
    assert main(["bodies", "check", str(ARM6), "--json", "--write-card", str(card)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["checks"][0]["name"] == "hold"
    assert {k: doc["decisions"][k]["value"] for k in ("class", "base", "ee")} == {
        "class": "arm", "base": "fixed", "ee": "tool0",
    }  # fmt: skip
    assert "candidates" in doc["decisions"]["ee"]["evidence"]
    text = card.read_text()
    assert "ee: tool0" in text and "# ee: [guess] name matches" in text
    # the written card stands for the robot file (its robot: field) and is then obeyed
    assert main(["bodies", "check", str(card), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["decisions"]["ee"]["how"] == "card" and again["class"] == "arm"


def test_bodies_check_generated_and_failing(capsys) -> None:
    from xembody.cli import main

    assert main(["bodies", "check", "--class", "quadruped", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"][0]["name"] == "stand"
    rc = main(["bodies", "check", str(QUAD), "--no-card", "--json"])  # guesses only
    doc = json.loads(capsys.readouterr().out)
    assert doc["card"] == "" and doc["decisions"]["base"]["how"] == "guess"
    assert rc == (0 if doc["passed"] else 1)
    assert main(["bodies", "check", str(ARM6), "--ee", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "ee: 'nowhere' is neither a link" in err and "--ee LINK" in err


# --- training on a file through the CLI (a few PPO iterations each) -------------------------
@pytest.mark.parametrize(
    ("task", "path", "extra"),
    [
        ("reach", ARM6, ["--ee", "tool0"]),
        ("reach", ARM7, []),
        ("reach", PAN_TILT, []),
        ("velocity", QUAD, ["--card", str(QUAD_CARD)]),
    ],
)
def test_train_on_a_fixture_through_the_cli(task, path, extra, tmp_path: Path) -> None:
    from xembody.cli import main

    argv = ["train", "--task", task, "--body", str(path), *extra, "--num-envs", "8"]
    argv += ["--iterations", "2", "--steps-per-env", "8", "--threads", "1"]
    assert main([*argv, "--log-root", str(tmp_path), "--run-name", "smoke"]) == 0
    (run,) = tmp_path.glob("*/smoke")
    assert (run / "model_1.pt").is_file()
    facts = json.loads(next(run.glob("*.xml.json")).read_text())
    assert facts["body_class"] == {"reach": "arm", "velocity": "quadruped"}[task]


def test_task_errors_name_the_card_field(capsys) -> None:
    import dataclasses

    from xembody.cli import main
    from xembody.sim.bodies.for_training import check_for_task

    assert main(["train", "--task", "velocity", "--body", str(ARM6), "--iterations", "1"]) == 2
    assert "set class: in the card, or --body-class quadruped" in capsys.readouterr().err
    emb = load_report(ARM6).embodiment
    no_ee = dataclasses.replace(emb, sensors=dataclasses.replace(emb.sensors, ee_site=None))
    with pytest.raises(ValueError, match=r"no end effector: set ee: in the card, or --ee LINK; "
                       r"candidate frames: flange, tool0$"):  # fmt: skip
        check_for_task("reach", no_ee)
    with pytest.raises(ValueError, match=r"needs a floating base: set base: floating"):
        check_for_task("velocity", load_report(QUAD, base="fixed").embodiment)


@pytest.mark.parametrize(("body_class", "seed"), [("humanoid", 1), ("quadruped", 0), ("arm", 0)])
def test_rule_gains_hold_generated_bodies_without_actuators(body_class, seed, tmp_path) -> None:
    """The generated bodies with their actuators (and PD targets) removed, as a vendor MJCF
    without actuators comes: the rule's gains hold them."""
    import re

    mjcf = bodies.sample(body_class, seed=seed).mjcf
    mjcf = re.sub(r'<actuator>.*?</actuator>|ctrl="[^"]*"', "", mjcf, flags=re.S)
    path = tmp_path / "bare.xml"
    path.write_text(mjcf)
    r = load_report(path)
    assert r.embodiment.params["actuators"].startswith("added")
    assert _decided(r)["class"] == body_class
    (result,) = run_checks(r.embodiment)
    assert result["passed"] and result["divergences"] == 0, result["message"]


def test_urdf_picture_shows_visual_meshes(tmp_path: Path) -> None:
    from xembody.sim.render import render_model

    model = load_report(ARM6).embodiment.compile()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    shown = render_model(model, data, width=160, height=120)
    model.geom_rgba[(model.geom_contype == 0) & (model.geom_conaffinity == 0), 3] = 0
    hidden = render_model(model, data, width=160, height=120)  # visual meshes made invisible
    assert np.abs(shown.astype(int) - hidden.astype(int)).sum() > 0


def test_unreadable_mesh_names_the_file_and_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(ROBOTS / "dae_robot", folder)
    (folder / "meshes" / "head.dae").write_text("<COLLADA>not a mesh")
    with pytest.raises(ValueError, match=r"head\.dae: mesh format '\.dae' .*convert it to STL"):
        load_report(folder / "urdf" / "pan_tilt.urdf")


def test_sampled_body_writes_its_card(tmp_path: Path) -> None:
    from xembody.cli import main

    out = tmp_path / "q.xml"
    assert main(["bodies", "sample", "--class", "quadruped", "--out", str(out)]) == 0
    card = read_card(out.with_suffix(".yaml"))
    assert (card.body_class, card.base, card.keyframe) == ("quadruped", "floating", "home")
    assert card.feet == ("FL_foot", "FR_foot", "RL_foot", "RR_foot")
    out.with_suffix(".xml.json").unlink()  # the card alone says what the MJCF does not
    r = load_report(out.with_suffix(".yaml"))
    assert r.decisions["feet"].how == "card" and r.embodiment.body_class == "quadruped"
