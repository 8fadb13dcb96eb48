"""The studies of ``python -m benchmarks``, one file each, on the :class:`benchmarks.study.Study` interface.

``run`` (the suite's sweep and its report), ``ablate`` (TimesCLIP's configurations), ``budget`` (test MSE against the
training budget), ``transfer`` (self-pretrained against random-init backbones), ``regression`` (series-level
regression beside scikit-learn) and ``tune`` (hyperparameter search on the validation split, on Ray Tune). A new
study is a new file here and one line in ``benchmarks.cli.COMMANDS``.
"""
