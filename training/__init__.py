"""Training and exporting the shipped networks: ``train_2d`` (pose hourglass), ``train_detector``,
``train_3d`` (lifter), ``export_weights``; ``presets`` holds their configurations. May import
``inference``, ``data`` and ``evaluation``; nothing imports ``training``."""
