"""`xembody dynamics`: fit and evaluate learned joint dynamics, and measure the reality gap.

    xembody dynamics fit --data arm_train.zarr --model jointwise --minutes 5 --out arm.pt
    xembody dynamics eval --train arm_train.zarr --test arm_test.zarr --minutes 1 5 20 --json
    xembody dynamics gap --policy tests/assets/policies/reach --data arm_train.zarr \
        --test arm_test.zarr --minutes 5 --json
    xembody dynamics effects --policy tests/assets/policies/reach

`eval` fits the joint-wise model and the whole-body MLP on the first M minutes of the
training dataset for each M and reports held-out one-step and 10-step rollout errors (rad)
on the test dataset, with the nominal simulator as a third predictor. `gap` runs the
exported policy in closed loop in the nominal simulator, on the robot the data was
recorded on (rebuilt from the dataset's meta; or `--robot`, which must be that robot unless
`--allow-other-robot`), and on that robot with three adapters (`xembody.real.gap.ADAPTERS`):
the nominal model alone (the lead on the targets, no data), the model fit on M minutes of
the robot's data (the adapter as deployed), and the same with `--extrapolate 0` (no lead):
the difference of the first two is what the learned model adds. The model is trained with
the same flags as `fit`. With --test it also replays the held-out session's targets open
loop in the same cases. `effects` needs no data: it splits the policy's closed-loop gap by
proxy effect (each one alone, and the full proxy without it) and reports how much of the
gap accrues while a joint is at its actuator force limit, where no change of target can
help.
"""

from __future__ import annotations

import argparse
import json

import torch

from xembody.collect import add_robot_config, robot_options
from xembody.config import add_arguments, from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    from xembody.models.dynamics import DynamicsConfig
    from xembody.real.adapt import AdaptConfig

    p = sub.add_parser("dynamics", help="learned joint dynamics: fit, eval, gap")
    verbs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = verbs.add_parser("fit", help="fit a dynamics model on a collected dataset")
    f.add_argument("--data", required=True, help="dataset written by `xembody collect`")
    f.add_argument("--model", default="jointwise", help="jointwise or mlp")
    f.add_argument("--minutes", type=float, default=None, help="use the first M minutes")
    f.add_argument("--out", required=True, help="model file (.pt)")
    add_arguments(f, DynamicsConfig)
    f.set_defaults(run=run_fit)

    e = verbs.add_parser("eval", help="held-out errors vs data size, both models + nominal sim")
    e.add_argument("--train", required=True)
    e.add_argument("--test", required=True, help="a separate session (other --seed)")
    e.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 20.0])
    e.add_argument("--horizon", type=int, default=10, help="rollout steps")
    e.add_argument("--json", action="store_true", help="print JSON only")
    add_arguments(e, DynamicsConfig)
    e.set_defaults(run=run_eval)

    g = verbs.add_parser("gap", help="closed-loop tracking: sim, robot, robot + adapters")
    g.add_argument("--policy", required=True, help="export folder (xembody export)")
    g.add_argument("--data", required=True, help="robot dataset of the policy's body")
    g.add_argument("--nominal-data", default=None,
                   help="nominal-sim dataset, reference model (default: collect now)")  # fmt: skip
    g.add_argument("--minutes", type=float, default=5.0, help="robot (and nominal) data used")
    g.add_argument("--model", default="jointwise", help="jointwise or mlp")
    g.add_argument("--robot", default=None, help="robot of the closed loop (default: the data's)")
    add_robot_config(g)
    g.add_argument("--allow-other-robot", action="store_true",
                   help="allow --robot to differ from the robot the data came from")  # fmt: skip
    g.add_argument("--num-envs", type=int, default=8)
    g.add_argument("--episodes", type=int, default=2, help="episode lengths per env")
    g.add_argument("--test", default=None, help="held-out proxy session: open-loop replay too")
    g.add_argument("--replay-steps", type=int, default=500, help="periods replayed")
    g.add_argument("--predict", action="store_true", help="feed the policy predicted readings")
    g.add_argument("--json", action="store_true", help="print JSON only")
    add_arguments(g, AdaptConfig)
    add_arguments(g, DynamicsConfig)
    g.set_defaults(run=run_gap)

    x = verbs.add_parser("effects", help="split a policy's sim-to-proxy gap by proxy effect")
    x.add_argument("--policy", required=True, help="export folder (xembody export)")
    x.add_argument("--robot", default=None,
                   help="robot JSON or module:Class (default: the policy's body)")  # fmt: skip
    add_robot_config(x)
    x.add_argument("--num-envs", type=int, default=8)
    x.add_argument("--episodes", type=int, default=2, help="episode lengths per env")
    x.add_argument("--json", action="store_true", help="print JSON only")
    x.set_defaults(run=run_effects)


def _threads() -> None:
    torch.set_num_threads(1)


def run_fit(args: argparse.Namespace) -> int:
    from xembody.models.dataset_meta import dataset_body, read_meta
    from xembody.models.dynamics import DynamicsConfig, fit, load_frames
    from xembody.models.dynamics import save as save_model

    _threads()
    cfg = from_args(DynamicsConfig, args)
    episodes, meta = load_frames(args.data, args.minutes)
    emb = dataset_body(meta)
    model = fit(args.model, emb, episodes, cfg)
    ident = read_meta(meta).get("robot_id")
    info = {"data": args.data, "minutes": args.minutes, "robot": meta.get("robot"),
            "robot_id": ident}  # fmt: skip
    save_model(model, emb, args.out, {**info, "frames": model.train_frames})
    print(json.dumps({"out": args.out, "model": args.model, "frames": model.train_frames}))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from xembody.models.dataset import Dataset
    from xembody.models.dynamics import DynamicsConfig
    from xembody.models.dynamics_eval import study
    from xembody.real.proxy import NominalSim

    _threads()
    if any(m <= 0 for m in args.minutes):
        raise ValueError(f"--minutes {args.minutes}: expected positive values")
    nominal = NominalSim(Dataset.open(args.test).meta)
    result = study(args.train, args.test, args.minutes, from_args(DynamicsConfig, args),
                   horizon=args.horizon, nominal=nominal.rollout)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    k = args.horizon
    nom = result["nominal_sim"]
    print(f"{result['body']}: held-out RMSE (rad), one-step / {k}-step rollout")
    print(f"  nominal sim              {nom['one_step_rmse']:.4f} / {nom[f'rollout{k}_rmse']:.4f}")
    for row in result["by_minutes"]:
        for kind in ("jointwise", "mlp"):
            r = row[kind]
            print(f"  {kind:9s} {row['minutes']:5g} min  "
                  f"{r['one_step_rmse']:.4f} / {r[f'rollout{k}_rmse']:.4f}")  # fmt: skip
    return 0


def run_gap(args: argparse.Namespace) -> int:
    import sys

    from xembody.models.dynamics import DynamicsConfig
    from xembody.real.adapt import AdaptConfig
    from xembody.real.gap import GapConfig, gap_study
    from xembody.real.proxy import RobotConfig

    _threads()
    robot = None
    if args.robot:
        robot = RobotConfig.load(args.robot, robot_options(args.robot_config))
    cfg = GapConfig(
        policy=args.policy, data=args.data, nominal_data=args.nominal_data,
        minutes=args.minutes, model=args.model, num_envs=args.num_envs,
        episodes=args.episodes, test=args.test, replay_steps=args.replay_steps,
        predict=args.predict, robot=robot, allow_other_robot=args.allow_other_robot,
        adapt=from_args(AdaptConfig, args), dynamics=from_args(DynamicsConfig, args),
    )  # fmt: skip
    result = gap_study(cfg)
    where = {"dataset": "the robot the data came from (rebuilt from the dataset's meta)",
             "given": "the robot given with --robot"}[result["robot_source"]]  # fmt: skip
    if result["note"]:
        print(result["note"], file=sys.stderr)
    print(f"gap: closed loop on {where}: {result['robot']}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['body']}: joint tracking error (rad), gap removed of "
          f"{result['tracking_gap_rad']:.4f} rad")  # fmt: skip
    print(f"  sim   {result['sim']['tracking_error_rad']:.4f}")
    print(f"  robot {result['proxy_raw']['tracking_error_rad']:.4f}")
    for name, r in result["adapted"].items():
        print(f"  + {name:16s} {r['tracking_error_rad']:.4f}  {r['gap_removed']:6.0%}")
    print(f"  learned minus nominal: {result['model_contribution']:+.0%} of the gap")
    return 0


def run_effects(args: argparse.Namespace) -> int:
    from xembody.models.exported import ExportedPolicy
    from xembody.real.gap import effects_study, policy_body
    from xembody.real.proxy import RobotConfig

    _threads()
    body, seed = policy_body(args.policy, ExportedPolicy.load(args.policy).contract)
    robot = RobotConfig(body=body, body_seed=seed)
    if args.robot:
        robot = RobotConfig.load(args.robot, robot_options(args.robot_config))
        if (robot.body, robot.body_seed) != (body, seed):
            raise ValueError(f"--robot {args.robot}: body {robot.body} seed {robot.body_seed}, "
                             f"the policy was trained on {body} seed {seed}")  # fmt: skip
    r = effects_study(args.policy, robot, num_envs=args.num_envs, episodes=args.episodes)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['body']}: tracking error sim {r['sim_rad']:.4f} rad, proxy {r['proxy_rad']:.4f} "
          f"rad, gap {r['gap_rad']:.4f} rad")  # fmt: skip
    print(f"  {'effect':13s} {'only (rad)':>10s} {'share':>6s} {'without':>9s} {'share':>6s}")
    for e in r["effects"]:
        without = "" if e["without_rad"] is None else (
            f"{e['without_rad']:9.4f} {e['without_share']:6.0%}")  # fmt: skip
        print(f"  {e['effect']:13s} {e['only_rad']:10.4f} {e['only_share']:6.0%} {without}")
    sat = r["saturated_fraction"]
    print(f"  periods ending torque-saturated: sim {sat['sim']:.0%}, proxy {sat['proxy']:.0%}; "
          f"share of the gap in them: {r['gap_share_saturated']:.0%}")  # fmt: skip
    return 0
