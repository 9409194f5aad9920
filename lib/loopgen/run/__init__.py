"""Running the companion: ``profiles`` (smoke / demo / demo-long / colab / paper: data only), ``choices`` (every
choice the paper leaves open, and the docs page written from it), ``runner`` (every notebook through papermill,
side by side, each after what it reads), ``pages`` (the executed notebooks as web pages), ``colab`` (the badge and
install cell) and ``rehearse`` (the paper profile's dress rehearsal).

``profiles`` imports only the registry, the paper's numbers, the models' defaults and the corpus; the rest may
import anything but :mod:`loopgen.commands`.
"""
