"""The house: layers point one way (import-linter, the kept tool), every default path comes from
the catalog and lies under the state folder, each stage's config section checks itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import catalog, paths
from core.config import section
from core.errors import ConfigError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("core", "features", "training", "serving", "monitoring", "custseg")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_layers_contract_is_kept():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    "module,upward",
    [
        ("features/build.py", "import custseg.cli"),  # a stage importing the commands
        ("core/errors.py", "import features.contract"),  # the floor importing a stage
        ("training/report.py", "from serving import models"),  # a stage importing a later one
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward):
    tree = _copy(tmp_path)
    with open(tree / module, "a") as f:
        f.write(f"\n{upward}  # noqa\n")
    proc = _lint_imports(tree)
    assert proc.returncode != 0 and "BROKEN" in proc.stdout, proc.stdout[-2000:]


def test_every_default_folder_lies_under_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land where the user stands
    home = paths.home()
    defaults = [
        catalog.sample_dir(),
        catalog.clean_dir(),
        catalog.features_file(),
        catalog.run_dir(),
        catalog.train_dir(),
        catalog.segments_dir(),
        catalog.score_dir(),
        catalog.monitoring_dir(__import__("datetime").date(2026, 6, 30)),
    ]
    for path in defaults:
        assert path.is_relative_to(home), path
    assert paths.tracking_uri() == f"sqlite:///{home / catalog.MLFLOW_DB}"


def test_registered_names_round_trip():
    assert catalog.scheme_of(catalog.segmenter_name("rfm_rules")) == "rfm_rules"
    assert catalog.scheme_of(catalog.predictor_name("churn")) is None


def test_sample_without_out_writes_into_the_state_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["sample", "--customers", "20"], capsys)
    assert code == 0, err
    assert (catalog.sample_dir() / "transactions.csv").exists()
    assert not any(tmp_path.iterdir())  # nothing in the current directory


def test_a_config_section_checks_itself_and_options_win(tmp_path):
    from features.definitions import FeatureConfig
    from training.prediction.config import PredictionConfig

    cfg = tmp_path / "c.toml"
    cfg.write_text("[prediction]\ntrials = 5\nchurn_days = 60\n[features]\nwindows = [60, 7]\n")
    p = section(cfg, "prediction", PredictionConfig.from_dict, trials=9, churn_days=None)
    assert (p.trials, p.churn_days) == (9, 60)  # the option wins, a missing option does not
    assert section(cfg, "features", FeatureConfig.from_dict).windows == (7, 60)
    with pytest.raises(ConfigError, match=r"options: prediction.trials = 0: a whole number >= 1"):
        section(None, "prediction", PredictionConfig.from_dict, trials=0)
    cfg.write_text("[prediction]\ngate_metric = 'accuracy'\n")
    with pytest.raises(ConfigError, match=rf"{cfg.name}: prediction.gate_metric = 'accuracy'"):
        section(cfg, "prediction", PredictionConfig.from_dict)


def test_stages_do_not_print_through_the_commands():
    """The stage packages hold no typer: options are parsed by the commands only."""
    for pkg in ("core", "features", "training", "serving", "monitoring"):
        for f in (ROOT / pkg).rglob("*.py"):
            assert "import typer" not in f.read_text("utf-8"), f
