"""Reading and analysing listening-test ratings (paper, "Listening Test" and Figure 6).

* :func:`load_ratings` reads every ``ratings_*.csv`` of a study and validates each row; bad rows are kept
  aside with a reason (``ratings.attrs["rejected"]``) and reported, never dropped silently.
* :func:`analyse` gives per-group mean / median / std / count, the Kruskal-Wallis H test across groups
  (the paper's test, whose H and p are in ``loopgen.paper.LISTENING``) and pairwise two-sided Mann-Whitney U tests with Holm's
  correction for multiple comparisons.
* :func:`plot_ratings` draws Figure 6 with seaborn: a box per group, every rating as a dot, the mean as a red
  triangle with its value.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from loopgen.paper import GROUP_LABELS, LISTENING, LISTENING_MEANS

from .study import RATING_COLUMNS, StudyLayout, read_key, sanitise_listener_id, write_csv_atomic

log = logging.getLogger(__name__)

SIMULATED_TITLE = "SIMULATED - not listener data"
PROXY_TITLE = "PROXY listener (a real-vs-generated classifier) - not listener data"


def data_label(simulated: bool | str) -> str:
    """What the ratings are: "listeners" (real people), "PROXY" (the proxy listener) or "SIMULATED"."""
    if not simulated:
        return "listeners"
    return "PROXY" if str(simulated).lower() == "proxy" else "SIMULATED"
REJECTED_COLUMNS = ("source_file", "line", "listener_id", "stimulus_id", "rating", "reason")


def group_label(group: str) -> str:
    """The paper's name of a group ('vq_vae_temp1.2' -> 'VQ-VAE (temp 1.2)')."""
    return GROUP_LABELS.get(group, group)


def _rating_files(study_dir: Path) -> list[Path]:
    layout = StudyLayout(study_dir)
    files = set(study_dir.glob("ratings_*.csv")) | set(layout.ratings.glob("ratings_*.csv"))
    return sorted(files)


def _parse_rating(text: str) -> int | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not value.is_integer() or not 1 <= value <= 5:
        return None
    return int(value)


def load_ratings(study_dir: Path | str, key: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every valid rating of a study: listener_id, stimulus_id, rating (int), simulated (bool), source_file.

    Reads ``<study>/ratings/ratings_*.csv`` and ``<study>/ratings_*.csv``. A row is rejected (kept in
    ``attrs["rejected"]`` with its reason, and logged) when its stimulus id is unknown or a familiarisation
    loop, its rating is not an integer 1-5, its listener id is empty or holds what the study page never writes
    (only letters, digits, ``-`` and ``_``: no script or spreadsheet-formula text reaches a table), or it repeats
    a (listener, stimulus) pair already read. Files named ``ratings_SIMULATED*.csv`` or with a true ``simulated`` column are simulated.
    """
    study_dir = Path(study_dir)
    key = read_key(study_dir) if key is None else key
    roles = dict(
        zip(
            key["stimulus_id"].astype(str),
            key.get("role", pd.Series("stimulus", index=key.index)),
            strict=True,
        )
    )
    kept: list[dict] = []
    rejected: list[dict] = []
    seen: dict[tuple[str, str], str] = {}
    files = _rating_files(study_dir)
    for path in files:
        name = path.name
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            rejected.append({"source_file": name, "line": 0, "reason": f"unreadable file ({err})"})
            continue
        missing = [c for c in RATING_COLUMNS if c not in frame.columns]
        if missing:
            rejected.append({"source_file": name, "line": 0, "reason": f"file lacks columns {missing}"})
            continue
        file_simulated = name.upper().startswith(("RATINGS_SIMULATED", "RATINGS_PROXY"))
        for line, row in enumerate(frame.itertuples(index=False), start=2):
            listener, stimulus, raw = (str(getattr(row, c)).strip() for c in RATING_COLUMNS)
            record = {
                "source_file": name,
                "line": line,
                "listener_id": listener,
                "stimulus_id": stimulus,
                "rating": raw,
            }
            rating = _parse_rating(raw)
            reason = None
            if not listener:
                reason = "empty listener id"
            elif listener != sanitise_listener_id(listener):
                reason = "listener id holds characters the study page never writes (letters, digits, - and _ only)"
            elif stimulus not in roles:
                reason = "unknown stimulus id"
            elif roles[stimulus] != "stimulus":
                reason = "familiarisation loop (not rated)"
            elif rating is None:
                reason = "rating is not an integer from 1 to 5"
            elif (listener, stimulus) in seen:
                reason = (
                    f"duplicate: this listener already rated this stimulus in {seen[(listener, stimulus)]}"
                )
            if reason:
                rejected.append({**record, "reason": reason})
                continue
            seen[(listener, stimulus)] = name
            simulated = file_simulated or str(getattr(row, "simulated", "")).strip().lower() in {"true", "1"}
            kept.append({**record, "rating": rating, "simulated": simulated})
    columns = [*RATING_COLUMNS, "simulated", "source_file"]
    ratings = pd.DataFrame(kept, columns=columns).astype({"rating": int, "simulated": bool})
    rejected_frame = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    ratings.attrs["rejected"] = rejected_frame
    ratings.attrs["files"] = [p.name for p in files]
    if len(rejected_frame):
        message = (
            f"{len(rejected_frame)} rating rows rejected in {study_dir} (see ratings.attrs['rejected']):\n"
        )
        message += rejected_frame.groupby("reason").size().to_string()
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return ratings


@dataclass(frozen=True)
class KruskalResult:
    """Kruskal-Wallis H test across groups: statistic, p-value, degrees of freedom, ratings used."""

    H: float  # noqa: N815 - the test's name for it
    p: float
    dof: int
    n: int


def _group_order(key: pd.DataFrame) -> list[str]:
    rated = key[key["role"] == "stimulus"] if "role" in key.columns else key
    return list(dict.fromkeys(rated["group"]))


def _with_groups(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    merged = ratings.merge(
        key[["stimulus_id", "group"]], on="stimulus_id", how="left", validate="many_to_one"
    )
    unknown = merged["group"].isna()
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} ratings name stimuli missing from the key, e.g. "
            f"{merged.loc[unknown, 'stimulus_id'].iloc[0]!r}"
        )
    return merged


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` (family-wise error control), same order as given."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


def analyse(
    ratings: pd.DataFrame, key: pd.DataFrame, alpha: float = 0.05
) -> tuple[pd.DataFrame, KruskalResult, pd.DataFrame]:
    """Per-group table, Kruskal-Wallis test and Holm-corrected pairwise Mann-Whitney U tests.

    ``table``: index group (the key's order), columns mean, median, std, count, listeners.
    ``posthoc``: group_a, group_b, U, p, p_holm, significant (p_holm < alpha), rank_biserial
    (effect size, positive when group_a's ratings tend to be higher).
    """
    merged = _with_groups(ratings, key)
    order = [g for g in _group_order(key) if g in set(merged["group"])]
    grouped = merged.groupby("group")
    table = pd.DataFrame(
        {
            "mean": grouped["rating"].mean(),
            "median": grouped["rating"].median(),
            "std": grouped["rating"].std(ddof=1),
            "count": grouped["rating"].size(),
            "listeners": grouped["listener_id"].nunique(),
        }
    ).reindex(order)
    table.index.name = "group"

    samples = [merged.loc[merged["group"] == g, "rating"].to_numpy(dtype=float) for g in order]
    if len(samples) >= 2 and len(np.unique(np.concatenate(samples))) > 1:
        result = stats.kruskal(*samples)
        kruskal = KruskalResult(
            float(result.statistic), float(result.pvalue), len(samples) - 1, int(len(merged))
        )
    else:  # one group, or every rating identical: the test is undefined
        kruskal = KruskalResult(float("nan"), float("nan"), max(len(samples) - 1, 0), int(len(merged)))

    rows = []
    for (ga, a), (gb, b) in itertools.combinations(zip(order, samples, strict=True), 2):
        if len(np.unique(np.concatenate([a, b]))) > 1:
            u, p = stats.mannwhitneyu(a, b, alternative="two-sided")
        else:
            u, p = len(a) * len(b) / 2.0, 1.0
        rows.append(
            {
                "group_a": ga,
                "group_b": gb,
                "U": float(u),
                "p": float(p),
                "rank_biserial": float(2.0 * u / (len(a) * len(b)) - 1.0),
            }
        )
    posthoc = pd.DataFrame(rows, columns=["group_a", "group_b", "U", "p", "rank_biserial"])
    posthoc.insert(4, "p_holm", holm(posthoc["p"].to_numpy()) if len(posthoc) else [])
    posthoc.insert(5, "significant", posthoc["p_holm"] < alpha)
    return table, kruskal, posthoc


def listening_table(table: pd.DataFrame, kruskal: KruskalResult, *, simulated: bool | str) -> pd.DataFrame:
    """Table 5: per-group ratings beside the paper's means, then the Kruskal-Wallis H and p rows.

    Columns: ratings, median, std, ours, paper, data ("ours"/"paper" hold the mean for a group row and the
    statistic for a test row). The ``data`` column says what the ratings are (:func:`data_label`): listeners,
    PROXY or SIMULATED, on every row.
    """

    paper_means = LISTENING_MEANS
    rows = {}
    for group, r in table.iterrows():
        rows[group_label(str(group))] = {
            "ratings": int(r["count"]),
            "median": float(r["median"]),
            "std": float(r["std"]),
            "ours": float(r["mean"]),
            "paper": paper_means.get(str(group), np.nan),
        }
    blank = {"ratings": int(kruskal.n), "median": np.nan, "std": np.nan}
    rows[f"Kruskal-Wallis H ({kruskal.dof} df)"] = {**blank, "ours": kruskal.H, "paper": LISTENING.kruskal_h}
    rows["Kruskal-Wallis p"] = {**blank, "ours": kruskal.p, "paper": f"< {LISTENING.p_value_below:g}"}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["data"] = data_label(simulated)
    out.index.name = "row"
    return out


def plot_ratings(ratings: pd.DataFrame, key: pd.DataFrame, simulated: bool | str, paper_means: bool = True):
    """Figure 6: rating box plot per group; green median line, red triangle at the mean with its value above.

    Drawn with seaborn: a box per group and, over it, every single rating as a dot, jittered (ratings are
    integers 1-5, so a box alone hides how many listeners gave each score). With ``paper_means`` the paper's
    two reported means are drawn as hollow black triangles for comparison. The title says "SIMULATED - not
    listener data" when ``simulated`` is true, and names the PROXY listener when it is ``"proxy"``.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    merged = _with_groups(ratings, key)
    order = [g for g in _group_order(key) if g in set(merged["group"])]
    merged["rating"] = merged["rating"].astype(float)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    style = {"data": merged, "x": "group", "y": "rating", "order": order, "ax": ax}
    with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated ``vert``
        warnings.filterwarnings("ignore", message="vert: bool", category=DeprecationWarning)
        sns.boxplot(
            **style,
            color="lightsteelblue",
            width=0.55,
            showmeans=True,
            showfliers=False,
            medianprops={"color": "green", "linewidth": 2},
            meanprops={"marker": "^", "markerfacecolor": "red", "markeredgecolor": "red", "markersize": 9},
        )
    # each rating a dot, spread a little in both directions so that 20 equal ratings show as 20 dots
    spread = np.random.default_rng(0).uniform(-0.15, 0.15, len(merged))
    dots = {**style, "data": merged.assign(rating=merged["rating"] + spread)}
    sns.stripplot(**dots, color="0.25", size=2.5, alpha=0.4, jitter=0.22)
    means = merged.groupby("group")["rating"].mean()
    for x, group in enumerate(order):
        ax.annotate(
            f"{means[group]:.2f}",
            (x, means[group]),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            color="red",
            fontsize=9,
            fontweight="bold",
        )
    if paper_means:
        shown = [(order.index(g), v) for g, v in LISTENING_MEANS.items() if g in order]
        if shown:
            xs, ys = zip(*shown, strict=True)
            ax.plot(
                [x + 0.33 for x in xs],
                ys,
                linestyle="none",
                marker="^",
                markerfacecolor="none",
                markeredgecolor="black",
                markersize=8,
                label="paper's mean",
            )
            ax.legend(loc="lower left", fontsize=8)
    counts = merged["group"].value_counts()
    ax.set_xticks(range(len(order)), [f"{group_label(g)}\n(n={counts[g]})" for g in order], fontsize=8)
    ax.set_xlabel("")
    ax.set_ylim(0.5, 5.6)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.set_ylabel("rating (1-5): how much it sounds like music")
    title = "Listening-test ratings per group (Figure 6)"
    if simulated:
        title = f"{title}\n{PROXY_TITLE if data_label(simulated) == 'PROXY' else SIMULATED_TITLE}"
    ax.set_title(title, color="firebrick" if simulated else "black")
    fig.tight_layout()
    return fig


def ratings_for_analysis(
    study_dir: Path | str,
    key: pd.DataFrame | None = None,
    *,
    groups: Mapping[str, np.ndarray] | None = None,
    n_simulated: int = 20,
    seed: int = 0,
) -> tuple[pd.DataFrame, bool | str]:
    """(ratings, simulated): the listeners' ratings when any exist, else stand-in ratings.

    The stand-in is the PROXY listener (:mod:`loopgen.book.listening.proxy`, ``simulated == "proxy"``) when the
    groups' loops are given: its ratings depend on the loops. Without them it is the old simulation drawn
    around the paper's means (:mod:`loopgen.book.listening.simulate`, ``simulated is True``), which proves only
    that the analysis runs. Stand-in ratings are written to ``ratings/`` (``ratings_PROXY.csv`` or
    ``ratings_SIMULATED.csv``) and ignored as soon as one real ratings file is present. The proxy's
    scores are in ``ratings.attrs["proxy"]``.
    """
    from .simulate import simulate_ratings, write_simulated

    key = read_key(study_dir) if key is None else key
    ratings = load_ratings(study_dir, key)
    real = ratings[~ratings["simulated"]]
    if len(real):
        if ratings["simulated"].any():
            log.warning("ignoring simulated or proxy ratings: %d real ratings are present", len(real))
        real = real.reset_index(drop=True)
        real.attrs = dict(ratings.attrs)
        return real, False
    if groups is not None:
        from .proxy import PROXY_FILE, proxy_ratings, score_loops

        rated = key[key["role"] == "stimulus"]
        stimuli = {g: rated.loc[rated["group"] == g, "source_index"].to_numpy(int) for g in groups}
        scores = score_loops(groups, must_include=stimuli, seed=seed)
        proxy = proxy_ratings(key, scores, n_simulated, seed)
        columns = [*RATING_COLUMNS, "simulated"]
        write_csv_atomic(
            StudyLayout(Path(study_dir)).ratings / PROXY_FILE,
            columns,
            list(proxy[columns].itertuples(index=False, name=None)),
        )
        proxy.attrs["proxy"] = scores
        return proxy, "proxy"
    simulated = simulate_ratings(key, n_simulated, seed)
    write_simulated(simulated, study_dir)
    return simulated, True


def discussion(table: pd.DataFrame, kruskal: KruskalResult, *, simulated: bool | str) -> list[str]:
    """The paper's three listening-test claims, each checked on these ratings."""
    from loopgen.book.tables import claim

    means = table["mean"]
    generative = means.drop("training_set", errors="ignore")
    lines = []
    if "training_set" in means.index:
        lines.append(
            claim(
                f"The training set gets the highest mean rating (paper: {LISTENING.training_set_mean:.2f})",
                bool(means.idxmax() == "training_set"),
            )
        )
    if "vq_vae_temp1.2" in generative.index and len(generative) > 1:
        lines.append(
            claim(
                f"Among the generative models, VQ-VAE (temp {LISTENING.vq_vae_temperature:g}) gets the highest mean "
                f"rating (paper: {LISTENING.vq_vae_mean:.2f})",
                bool(generative.idxmax() == "vq_vae_temp1.2"),
            )
        )
    significant = bool(np.isfinite(kruskal.p) and kruskal.p < 0.001)
    lines.append(
        claim(
            f"Kruskal-Wallis finds the groups differ at p < {LISTENING.p_value_below:g} (H = {kruskal.H:.2f}; "
            f"paper: {LISTENING.kruskal_h:.2f})",
            significant,
        )
    )
    if data_label(simulated) == "PROXY":
        lines = [f"PROXY listener, not listener data - {line}" for line in lines]
        lines.append(
            "The PROXY listener rates each loop by how real a cross-validated real-vs-generated classifier finds "
            "it: the ranking reflects the loops, but it is a classifier's judgment, not people's."
        )
    elif simulated:
        lines = [f"SIMULATED ratings, not listener data - {line}" for line in lines]
        lines.append(
            "These simulated ratings were drawn around the paper's own means, so agreeing with the paper here "
            "shows only that the analysis works, not that the models sound like music."
        )
    return lines
