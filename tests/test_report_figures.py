"""Figures and ``simbench report``: files written, valid PNGs, referenced from report.md."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from simbench.report.figures import (
    balance_figure,
    convergence_figure,
    efficiency_figure,
    metric_vs_n_figure,
    save_figure,
)
from simbench.report.report import write_report
from simbench.report.synthetic import synthetic_results, write_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(argv: list[str]) -> int:
    """``simbench ARGV`` through the real entry point (a command that is not registered fails)."""
    from simbench import cli

    return cli.main(argv)


@pytest.fixture(scope="module")
def results():
    df = synthetic_results(families=("poisson", "bernoulli"), ns=(200, 800), replicates=4)
    bad = (df["c_name"] == "mlp") & (df["replicate"] == 0) & (df["s_n"] == 200)
    df.loc[bad, "status"] = "error"
    df.loc[bad, "error"] = "RuntimeError: boom"
    return df


def test_metric_vs_n_with_reference_line(results):
    fig = metric_vs_n_figure(results, "excess_deviance")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["poisson", "bernoulli"]
    ax = axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    # the dashed reference is (p+1)/n with p+1 = 4 coefficients
    ref = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(ref) == 1
    np.testing.assert_allclose(ref[0].get_xdata(), [200, 800])
    np.testing.assert_allclose(ref[0].get_ydata(), [4 / 200, 4 / 800])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["glm-as-nn", "mlp", "early-stop", "MLE theory (p+1)/n"]
    crb = metric_vs_n_figure(results, "coef_err_truth")
    assert any("Cramér–Rao" in t.get_text() for t in crb.legends[0].get_texts())


def test_figures_not_applicable_return_none(results):
    one_n = results[results["s_n"] == 200]
    assert metric_vs_n_figure(one_n, "excess_deviance") is None
    assert convergence_figure(results.drop(columns=["history_dist"])) is None
    assert efficiency_figure(results.drop(columns=["beta_hat"])) is None
    assert balance_figure(results.assign(balance=np.nan)) is None


def test_convergence_efficiency_balance(results):
    conv = convergence_figure(results)
    axes = [ax for ax in conv.axes if ax.get_visible()]
    assert len(axes) == 4
    labels = [t.get_text() for t in conv.legends[0].get_texts()]
    assert labels == ["glm-as-nn", "mlp", "early-stop", "1 standard error"]
    # the median curve of the converging configuration falls far below 1 SE
    glm = next(line for line in axes[0].get_lines() if line.get_label() == "glm-as-nn")
    assert glm.get_ydata()[-1] < 1e-3 < glm.get_ydata()[0]

    eff = efficiency_figure(results)
    left, right = eff.axes[:2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["glm-as-nn", "mlp", "early-stop"]
    assert left.get_xscale() == "log"
    assert "Cramér–Rao" in right.get_title()
    # one marker per scenario and configuration
    points = sum(len(c.get_offsets()) for c in left.collections)
    assert points == 4 * 3

    bal = balance_figure(results)
    assert bal is not None
    ax = bal.axes[0]
    assert "balance" in ax.get_xlabel()


def test_save_png_and_pdf(results, tmp_path):
    paths = save_figure(efficiency_figure(results), tmp_path / "eff", pdf=True)
    assert [p.name for p in paths] == ["eff.png", "eff.pdf"]
    assert paths[0].read_bytes()[:8] == PNG_MAGIC
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_report_writes_markdown_and_figures(results, tmp_path):
    directory = write_results(results, tmp_path / "res")
    report = write_report(directory)
    assert report.path == directory / "report.md"
    text = report.path.read_text()
    assert text.startswith("# synthetic: simulation report")
    assert "synthetic results (no simulation)" in text  # the sweep's description
    for heading in ("## Sweep", "## Cells", "## Accuracy", "## Efficiency", "## Speed"):
        assert heading in text
    assert "## Wald coverage of the reference fit" in text
    assert "RuntimeError: boom" in text  # commonest error message
    assert "(1 failed)" in text
    assert "**" in text  # best entries
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(referenced) >= 5
    assert {"figures/excess_deviance_vs_n.png", "figures/convergence.png"} <= set(referenced)
    assert {"figures/efficiency.png", "figures/balance.png"} <= set(referenced)
    for rel in referenced:
        png = directory / rel
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    assert {p.name for p in report.figures} == {r.split("/")[-1] for r in referenced}


def test_report_command(results, tmp_path, capsys):
    directory = write_results(results[results["s_family"] == "poisson"], tmp_path / "res")
    out = tmp_path / "elsewhere" / "r.md"
    code = run_cli(
        ["report", str(directory), "--out", str(out), "--pdf", "--metrics", "coef_z_mle,auc"]
    )
    assert code == 0
    assert "written:" in capsys.readouterr().out
    text = out.read_text()
    assert "`coef_z_mle`" in text and "`excess_deviance`" not in text
    assert (out.parent / "figures" / "efficiency.pdf").exists()
    assert run_cli(["report", str(directory), "--metrics", "coef_z_mlee"]) == 2
    assert "did you mean 'coef_z_mle'" in capsys.readouterr().err
    assert run_cli(["report", str(tmp_path / "nothing")]) == 2
