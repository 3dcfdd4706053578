"""The generalist pipeline's configuration: the task table `TASKS` (per-task defaults and
what each task's evaluation reports) and `GeneralistConfig`, the options of every stage
(`models.pipeline` runs them; `xembody generalist` is the command line over it), with the
parsers of its seed lists and generator ranges.
"""

from __future__ import annotations

import dataclasses

from xembody.models.cfg import help_field

# Per task: the defaults of the options left unset (None; an empty teacher: no demos and
# no base); "scores": what the evaluation reports (models/pipeline.py SCORES); "obs_options":
# the task-config switches the options of those names turn on; "relative_to": the
# per-joint term the student's outputs are relative to under `relative_actions`.
TASKS = {
    "reach": {
        "scores": "success",
        "obs_options": ("jacobian_obs", "ik_obs", "gravity_obs"),
        "relative_to": "joint_pos",
        "teacher": "xembody.models.teachers:ReachDiffIKTeacher",
        "out": "runs/generalist-reach",
        # long arms of 5, 6 and 7 joints (the held-out ones are longer still)
        "train_bodies": "4,8,9,14",
        "heldout_overrides": "link_length=0.30:0.36",  # longer links than any training arm
        "specialist_iterations": 150,
        "specialist_envs": 128,
        "dagger_iterations": 12,
        "dagger_envs": 32,
        # the differential-IK base already succeeds; a small residual keeps the specialists
        # close to it, and the generalist distilled from them generalises (0.5: held-out
        # success 92 % -> 28 %, docs/RESULTS.md)
        "residual_scale": 0.1,
    },
    "navigate": {
        "scores": "success",
        "teacher": "xembody.models.teachers:NavigatePlannerTeacher",
        "out": "runs/generalist-navigate",
        "train_bodies": "0,1,2,6",  # two omnidirectional, two differential bases
        # a wider wheelbase and a longer chassis than any training base
        "heldout_overrides": "track_width=0.70:0.80,length=0.62:0.72",
        # at 0.5 and 150 iterations the specialists plateau near 80 % (docs/RESULTS.md)
        "specialist_iterations": 300,
        "specialist_envs": 128,
        "dagger_iterations": 12,
        "dagger_envs": 32,
        "residual_scale": 1.0,
    },
    "velocity": {
        "scores": "tracking",
        "teacher": "",  # none for legs: plain PPO specialists, a fresh student
        "out": "runs/generalist-velocity",
        # trunks 0.37-0.59 m, legs (thigh + calf) 0.37-0.56 m, 7.7-18.7 kg; 6, 18, 46 and 64
        # add shanks near the range's end (0.28-0.30 m): held out / in distribution 3.24x
        # with the first six alone, 1.58x with all ten (docs/RESULTS.md)
        "train_bodies": "2,3,8,9,11,28,6,18,46,64",
        # shanks >= 10 % longer than the training range's longest (0.30 m)
        "heldout_overrides": "calf_length=0.33:0.36",
        "heldout_in_range": "14",  # long thighs (0.28 m), 16.5 kg; never trained on
        # a generated quadruped tracks at 0.42x the standing policy's error after 500
        # iterations of 256 envs (docs/TRAINING.md)
        "specialist_iterations": 500,
        "specialist_envs": 256,
        # 256 envs x 100 steps of new states per body and iteration: the student's action
        # error is 0.0035 after 10 iterations on one body (docs/RESULTS.md)
        "dagger_iterations": 10,
        "dagger_envs": 256,
        # a gait is a function of the previous action and the clock: the student sees both,
        # each joint token directly, with normalised inputs (docs/RESULTS.md)
        "student_last_action": True,
        "normalize_inputs": True,
        # a quadruped's four knees have the same parent offset: the student needs each
        # joint's place on the body to tell them apart (docs/RESULTS.md)
        "joint_root_frame": True,
        "student": {"global_to_joints": True},
    },
}

# What an unset option becomes where its task has no default: no teacher, no such bodies,
# the student's inputs as they were.
UNSET = {
    "teacher": "",
    "heldout_in_range": "",
    "heldout_overrides": "",
    "student_last_action": False,
    "normalize_inputs": False,
    "joint_root_frame": False,
    "joint_subtree": False,
}


def _per_task(name: str) -> str:
    return "unset: by task, " + "; ".join(f"{t} {d.get(name) or 'none'}" for t, d in TASKS.items())


@dataclasses.dataclass(kw_only=True)
class GeneralistConfig:
    task: str = help_field("reach", f"task ({', '.join(TASKS)})")
    out: str | None = help_field(
        None, "output folder (stages resume from it); unset: runs/generalist-<task>"
    )
    train_bodies: str | None = help_field(
        None, "seeds of the training bodies (comma-separated); " + _per_task("train_bodies")
    )
    heldout_bodies: str = help_field("100,101", "seeds of the held-out bodies (outside the ranges)")
    heldout_in_range: str | None = help_field(
        None,
        "seeds of held-out bodies sampled inside the training ranges (none: no such bodies); "
        + _per_task("heldout_in_range"),
    )
    zero_shot: str = help_field(
        "",
        "robot files (URDF/MJCF; the body card beside each) evaluated zero-shot, comma-separated",
    )
    heldout_overrides: str | None = help_field(
        None,
        "generator ranges for held-out bodies, name=lo:hi,...; " + _per_task("heldout_overrides"),
    )
    teacher: str | None = help_field(
        None, "scripted teacher, module:Class (empty: none); " + _per_task("teacher")
    )
    demo_episodes: int = help_field(64, "teacher episodes per training body")
    demo_noise: float = help_field(0.1, "action noise executed (not recorded) during demos")
    bc_epochs: int = help_field(20, "behaviour-cloning epochs")
    specialist_iterations: int | None = help_field(
        None, "PPO iterations per body; " + _per_task("specialist_iterations")
    )
    specialist_envs: int | None = help_field(
        None, "envs per specialist PPO run; " + _per_task("specialist_envs")
    )
    specialist_minutes: float = help_field(
        0.0, "wall-time budget of each specialist (train's max_minutes; 0: none)"
    )
    residual_scale: float | None = help_field(
        None, "bound of the residual correction (action units); " + _per_task("residual_scale")
    )
    dagger_iterations: int | None = help_field(
        None, "DAgger iterations; " + _per_task("dagger_iterations")
    )
    dagger_envs: int | None = help_field(
        None, "envs per body during DAgger; " + _per_task("dagger_envs")
    )
    dagger_keep: int = help_field(
        50_000, "DAgger: the newest samples kept per training body (the data each fit sees)"
    )
    dagger_action_noise: float = help_field(
        0.0, "DAgger: Gaussian noise (action units) added to the executed action, not the label"
    )
    dagger_desc_noise: float = help_field(
        0.0, "DAgger: noise on the student's descriptors, as a fraction of each entry's spread"
    )
    student_last_action: bool | None = help_field(
        None, "the student sees its previous action per joint; " + _per_task("student_last_action")
    )
    normalize_inputs: bool | None = help_field(
        None,
        "DAgger sets the student's input normalisation from the specialists' rollouts; "
        + _per_task("normalize_inputs"),
    )
    joint_root_frame: bool | None = help_field(
        None,
        "the joint descriptors hold each joint's anchor in the root body's frame; "
        + _per_task("joint_root_frame"),
    )
    joint_subtree: bool | None = help_field(
        None,
        "the joint descriptors hold what each joint moves (centre of mass from the anchor, "
        "mass); " + _per_task("joint_subtree"),
    )
    eval_episodes: int = help_field(100, "evaluation episodes per body and policy")
    jacobian_obs: bool = help_field(
        True, "reach: per-joint Jacobian-error terms in the observation (other tasks: unused)"
    )
    ik_obs: bool = help_field(
        True, "reach: a per-joint damped-least-squares IK step in the observation"
    )
    gravity_obs: bool = help_field(
        True, "reach: each joint's deflection under gravity (torque / kp) in the observation"
    )
    relative_actions: bool = help_field(
        True,
        "reach: the student outputs joint targets relative to the measured angles (a fixed "
        "skip), not absolute ones",
    )
    seed: int = help_field(0, "seed of envs and networks")
    json: bool = help_field(False, "print the results as JSON")
    write_docs: bool = help_field(False, "write the table into docs/RESULTS.md")

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r}: expected one of {sorted(TASKS)}")
        # the task's defaults fill only what the user left unset (None): a value given,
        # even "" or 0, is kept
        fields = {f.name for f in dataclasses.fields(self)}
        for name, value in (UNSET | TASKS[self.task]).items():
            if name in fields and getattr(self, name) is None:
                setattr(self, name, value)
        if not self.out:
            raise ValueError(f"out={self.out!r}: expected an output folder")
        for name in (
            "demo_episodes", "bc_epochs", "specialist_iterations", "specialist_envs",
            "dagger_iterations", "dagger_envs", "dagger_keep", "eval_episodes",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        if self.specialist_minutes < 0:
            raise ValueError(f"specialist_minutes={self.specialist_minutes}, expected >= 0")
        for name in ("dagger_action_noise", "dagger_desc_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 0")
        train = parse_seeds(self.train_bodies, "train_bodies")
        both = set(train) & set(
            parse_seeds(self.heldout_in_range, "heldout_in_range", required=False)
        )
        if both:
            raise ValueError(f"heldout_in_range={self.heldout_in_range!r}: seeds {sorted(both)} "
                             "are training bodies")  # fmt: skip
        parse_overrides(self.heldout_overrides)


def parse_seeds(text: str, name: str, *, required: bool = True) -> list[int]:
    """Seeds from "2,3,8" ("none": no seeds where not `required`); errors name option `name`."""
    if not required and text.strip() == "none":
        return []
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected comma-separated integers") from None
    if not seeds and required:
        raise ValueError(f"{name}={text!r}: expected at least one seed")
    return seeds


def parse_overrides(text: str) -> dict[str, tuple[float, float]]:
    """Generator ranges from "name=lo:hi,..." (`heldout_overrides`)."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            key, rng = item.split("=")
            lo, hi = (float(v) for v in rng.split(":"))
        except ValueError:
            raise ValueError(f"heldout_overrides item {item!r}: expected name=lo:hi") from None
        out[key] = (lo, hi)
    return out
