"""The one-off commands of ``python -m benchmarks``: measurements and figures that are no sweep.

``quickstart`` (TimesCLIP against NLinear on ETTh1, in minutes), ``speed`` (rendering, parameters, epoch times),
``export`` (ONNX against ``predict``), ``explain`` (the README's attention and view pictures), ``load-test`` (the
forecasting service under load), ``variates`` (a training step against the number of variates) and ``vq-figures``
(``VQTransformerModel``'s figures). Each is a :class:`benchmarks.study.Command`, registered in
``benchmarks.cli.COMMANDS``.
"""
