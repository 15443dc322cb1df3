"""custseg's bottom layer: what every stage shares and nothing stage-specific.

errors (user-facing errors), paths (the state folder), catalog (every named artifact: file
names, default folders, registered model names, the champion alias), config (the TOML file,
split into per-stage sections that each stage validates itself), progress (spinners and bars),
tracking (MLflow set-up). `core` imports no stage and no command: the layers point down only
(see README, "Layout"; `make lint` checks it with import-linter).
"""

__version__ = "0.1.0"
