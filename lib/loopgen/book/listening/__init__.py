"""The listening test (paper, "Listening Test", Figure 6): build a blind study, collect and analyse ratings.

``python -m loopgen study --profile demo --out build/study/demo`` (:mod:`loopgen.commands.study`) builds the
study folder from the generated groups saved by notebook 05 (``loopgen.store.sample_groups``).
"""

from __future__ import annotations

from .analysis import (
    KruskalResult,
    analyse,
    discussion,
    group_label,
    holm,
    listening_table,
    load_ratings,
    plot_ratings,
    ratings_for_analysis,
)
from .simulate import SIMULATED_FILE, simulate_ratings, write_simulated
from .study import (
    GROUPS,
    QUESTION,
    StudyLayout,
    build_study,
    ensure_study,
    has_real_ratings,
    listener_order,
    made_by_study,
    read_key,
    stimulus_ids,
    stimulus_loops,
)

__all__ = [
    "GROUPS",
    "QUESTION",
    "SIMULATED_FILE",
    "KruskalResult",
    "StudyLayout",
    "analyse",
    "build_study",
    "discussion",
    "ensure_study",
    "group_label",
    "has_real_ratings",
    "holm",
    "listener_order",
    "listening_table",
    "load_groups",
    "made_by_study",
    "load_ratings",
    "plot_ratings",
    "ratings_for_analysis",
    "read_key",
    "simulate_ratings",
    "stimulus_ids",
    "stimulus_loops",
    "write_simulated",
]


def load_groups(profile_name: str, seed: int = 0, groups: tuple[str, ...] = GROUPS, paths=None) -> dict:
    """The loops of each listening-test group as notebook 05 stored them for this run (profile, seed, the
    trained weights and data; ``paths`` default: ``Paths()``): another run's samples raise MissingInputError
    naming notebook 05."""
    from loopgen.book.evaluation import Evaluation

    return Evaluation(profile_name, seed, paths).stored_groups(groups)
