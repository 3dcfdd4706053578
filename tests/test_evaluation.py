"""Which episodes `run_episodes` counts: fixed per env before any ends, so short episodes
(falls) are not over-counted when there are more episodes than envs."""

from __future__ import annotations

import torch

from xembody.models.evaluation import run_episodes, summarize


class EpisodeStream:
    """The episode ends of an env batch, scripted: env i ends an episode every period[i]
    steps, a fall (terminated) when fall[i]. Stands in for physics only in what
    run_episodes reads: num_envs, get_observations and extras["finished"]."""

    def __init__(self, period: list[int], fall: list[bool]) -> None:
        self.num_envs, self.t = len(period), 0
        self.period, self.fall = torch.tensor(period), torch.tensor(fall, dtype=torch.float)

    def get_observations(self):
        return {"policy": torch.zeros(self.num_envs, 1)}

    def step(self, actions):
        self.t += 1
        ids = torch.nonzero(self.t % self.period == 0).flatten()
        extras = {}
        if len(ids):
            extras["finished"] = {
                "env_ids": ids,
                "success": 1.0 - self.fall[ids],
                "terminated": self.fall[ids],
                "length": self.period[ids].float(),
                "return": torch.zeros(len(ids)),
            }
        return self.get_observations(), None, None, extras


def test_each_env_gives_its_share_of_the_episodes_however_they_end():
    # Env 0 falls every 2 steps, env 1 walks 10 steps without falling: half the episodes
    # fall. Keeping the first 4 to end counted env 0's four falls (100 %).
    records = run_episodes(EpisodeStream([2, 10], [True, False]), lambda o: o["policy"], 4)
    result = summarize(records)
    assert result["episodes"] == 4
    assert result["termination_rate"]["mean"] == 0.5
    assert sorted(records["length"]) == [2.0, 2.0, 10.0, 10.0]


def test_a_remainder_goes_to_the_first_envs():
    env = EpisodeStream([3, 1, 5], [False, True, False])
    records = run_episodes(env, lambda o: o["policy"], 5)  # 2, 2 and 1 episodes
    assert sorted(records["length"]) == [1.0, 1.0, 3.0, 3.0, 5.0]
    assert env.t == 6  # stopped once env 0's second episode ended
