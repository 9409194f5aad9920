"""Every table and figure the notebooks write, with the paper item it reproduces.

One registry used by the runner's summary, the README map, ``figures/README.md`` and the test that checks a
smoke run wrote every file.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopgen.registry import NOTEBOOKS, TABLE2_SETTINGS, VQ_DEFAULT, autoencoders

AUTOENCODERS = autoencoders()


def vq_variant_name(t: int, L: int, K: int, table2: bool = False) -> str:  # noqa: N803 - the paper's symbols
    """File-name stem of a VQ-VAE variant; the default setting is plain ``vq_vae``, unless it is the Table 2
    run of a profile that trains Table 2 with a recipe of its own (``Profile.table2_vq_epochs``)."""
    if (t, L, K) == VQ_DEFAULT and not table2:
        return "vq_vae"
    return f"vq_vae_t{t}_L{L}_K{K}"


@dataclass(frozen=True)
class Output:
    filename: str
    paper_item: str
    notebook: str



def _outputs() -> tuple[Output, ...]:
    nb1, nb2, nb3, nb4, nb5, nb6, nb7, nb8, nb9 = NOTEBOOKS
    items = [
        Output("fig1_loop_pianoroll.png", "Figure 1 (loop pianoroll, bass and drum)", nb1),
        Output("table0_dataset.csv", "Dataset (Data Preprocess: LMD-full files, those in 4/4, loops, splits)", nb1),
    ]
    for model in AUTOENCODERS:
        items.append(Output(f"fig_training_{model}.png", f"Training curves, {model} (not in the paper)", nb2))
    for t, L, K in TABLE2_SETTINGS:  # noqa: N806
        name = vq_variant_name(t, L, K, table2=True)
        items.append(Output(f"fig_training_{name}.png", f"Training curves, Table 2 variant {name}", nb2))
    items += [
        Output("fig_training_prior.png", "LSTM prior training (next-code accuracy beside the paper's)", nb3),
        Output("table1_reconstruction.csv", "Table 1 (reconstruction error)", nb4),
        Output("table2_latent_size.csv", "Table 2 (VQ-VAE error by t, L, K)", nb4),
        Output("table3_musical_metrics.csv", "Table 3 (musical metrics)", nb5),
        Output("table3_second_opinion.csv", "Table 3's loops measured by MusPy, a second opinion (not in the paper)",
               nb5),
        Output("table4_latent_manipulation.csv", "Table 4 (metrics after copying latent codes)", nb6),
        Output("fig4_latent_loops.png", "Figure 4 (loop patterns in the discrete latent space)", nb6),
        Output("fig5_frequent_codes.png", "Figure 5 (most and least frequent codes, decoded)", nb6),
        Output("fig6_listening_ratings.png", "Figure 6 (listening-test ratings box plot)", nb7),
        Output("table5_listening.csv", "Listening test: means, Kruskal-Wallis H and p", nb7),
        Output("table6_sensitivity.csv", "The paper's other claims (beta, commitment, compression, seeds)", nb8),
        Output("table7_masked_prior.csv", "A masked code prior beside the LSTM prior (not in the paper)", nb9),
        Output("table7_second_opinion.csv", "Table 7's loops measured by MusPy, a second opinion (not in the paper)",
               nb9),
    ]
    # the paper's claims each notebook checks, and whether they hold on this run (loopgen.book.expectations)
    for notebook, tables in ((nb4, "Tables 1-2"), (nb5, "Table 3"), (nb6, "Table 4"), (nb8, "Table 6")):
        items.append(Output(f"claims_{notebook[:2]}.csv", f"The paper's claims about {tables}: holds or not here",
                            notebook))
    return tuple(items)


OUTPUTS: tuple[Output, ...] = _outputs()
