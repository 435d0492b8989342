"""Reference results: RESULTS.md carries every number the README's findings quote; verify-results grades a build
against the committed references; the Makefile checks its make version and lists the user variables."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from analysis import paths
from analysis import results as R

# A number as prose writes it: optional sign (ASCII or Unicode minus, '+'), thousands separators, decimals,
# scientific exponent. A hyphen after a letter ('post-2019') is not a sign; an en dash is a range ('5–7').
NUMBER = re.compile(r"(?<![\w.])([−\-+]?)(\d{1,3}(?:,\d{3})+(?![\d])|\d+(?:\.\d+)?(?:e[−\-]?\d+)?)")
# Exhibit and notebook references and inline code (file names, method names) are labels, not findings.
LABELS = re.compile(r"`[^`]*`|\b(?:Figures?|Tables?|notebooks?|tab)\s*\d+(?:\s*[–-]\s*\d+)?(?:\s*,\s*\d+)*")

# README findings bullet (its bold title) -> the RESULTS.md sections its numbers must come from.
SECTIONS = {
    "What the indices measure": ["What the indices measure"],
    "Claims check": ["Claims check"],
    "Sanction effects": ["Estimates", "What is ruled out"],
    "What is ruled out": ["What is ruled out", "Estimates", "What the indices measure"],
    "Shaanxi and Guangdong": ["Estimates"],
    "Pre-trends": ["Estimates"],
    "Multiverse": ["Multiverse (specification curve)"],
}


def numbers(text: str) -> list[tuple[str, str]]:
    """(number as written, normalised; the two characters before it) for every number outside labels."""
    text = LABELS.sub(" ", text)
    out = []
    for m in NUMBER.finditer(text):
        sign, body = m.groups()
        body = body.replace(",", "").replace("−", "-")
        out.append((("-" if sign in ("−", "-") else "") + body, text[max(0, m.start() - 2):m.start()]))
    return out


def quantum(number: str) -> float:
    """The last printed digit's unit: 0.121 -> 0.001, 22 -> 1, 3e-7 -> 1e-7."""
    return float(Decimal(1).scaleb(Decimal(number.lstrip("-")).as_tuple().exponent))


def found(number: str, bound: bool, pool: list[tuple[float, float]]) -> bool:
    """Whether ``number`` (as quoted) is a rounding of some number in ``pool`` ((value, quantum) pairs printed at
    the same or a finer precision, same sign). ``bound`` (the quote reads '≤ x'): x must be the pooled value rounded
    up (so the bound holds)."""
    v, q = float(number), quantum(number)
    for y, qy in pool:
        if (y < 0) != (v < 0):
            continue
        if bound:  # a bound must hold: the pooled value, rounded up, is the quoted one
            if qy <= q and v - q < y <= v:
                return True
        elif (qy == q and y == v) or (qy < q and abs(y - v) <= q / 2 + qy / 2 + 1e-15):
            return True
    return False


def findings(readme: str) -> dict[str, str]:
    """The README's "What the data say" section, split into its bullets by bold title."""
    section = readme.split("## What the data say", 1)[1].split("\n## ", 1)[0]
    bullets = re.split(r"\n- \*\*", "\n" + section)
    out = {"(intro)": bullets[0]}
    for b in bullets[1:]:
        title, _, body = b.partition("**")
        out[title.strip()] = body
    return out


def results_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.split("\n", 1)[0].strip(): p for p in parts[1:]}


def missing_numbers(readme: str, results_text: str) -> list[str]:
    """README finding numbers with no match in the RESULTS.md sections their bullet maps to."""
    sections = results_sections(results_text)
    missing = []
    for title, body in findings(readme).items():
        names = next((v for k, v in SECTIONS.items() if title.startswith(k)), None)
        source = "\n".join(sections.get(n, "") for n in names) if names else results_text
        pool = [(float(x), quantum(x)) for x, _ in numbers(source)]
        for x, before in numbers(body):
            if not found(x, "≤" in before or "<" in before, pool):
                missing.append(f"{title}: {x}")
    return missing


def test_readme_findings_quote_only_numbers_in_results():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    results_text = R.REFERENCE_RESULTS.read_text(encoding="utf-8")
    assert "## What the data say" in readme and "multiverse" in readme.split("## What the data say")[1].lower()
    assert len(numbers(findings(readme)["Multiverse"])) >= 5
    assert missing_numbers(readme, results_text) == []


def test_number_matching_rejects_what_is_not_there():
    results_text = "## Estimates\n| a | -0.005268 | 0.1206 | 2.247e-07 | 22.2% | 9 of 14 |\n"
    ok = "\n## What the data say\n- **Sanction effects** −0.0053 (wild p 0.121), 22%, 9 of 14, ≤ 3e-7.\n"
    assert missing_numbers(ok, results_text) == []
    for bad in ["+0.0053", "0.122", "−0.0054", "0.13", "10 of 14", "≤ 2e-7", "21%", "2.3e-7"]:
        text = f"\n## What the data say\n- **Sanction effects** {bad}.\n"
        assert missing_numbers(text, results_text), bad
    # a number in another section does not count for this bullet
    text = "\n## What the data say\n- **Multiverse** 0.121.\n"
    assert missing_numbers(text, results_text + "## Multiverse (specification curve)\n0.5\n") == ["Multiverse: 0.121"]
    # labels are not findings; a hyphenated year is not negative; en-dash ranges are two numbers
    assert [x for x, _ in numbers("`tab07` Figures 6–9, 13 post-2019 e=−2 5–7")] == ["2019", "-2", "5", "7"]


@pytest.fixture()
def built(tmp_path: Path) -> Path:
    """A tree with outputs and references that match."""
    (tmp_path / "data/processed/estimates").mkdir(parents=True)
    (tmp_path / "data/processed/multiverse_cache").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "data/processed/power.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data/processed/estimates/x.parquet").write_bytes(b"PAR1")
    (tmp_path / "data/processed/estimates/.up-to-date").write_text("")
    (tmp_path / "data/processed/multiverse_cache/k.parquet").write_bytes(b"cache")
    (tmp_path / "data/processed/exhibits.mk").write_text("rules")
    (tmp_path / "figures/fig01.png").write_bytes(b"png")
    (tmp_path / "data/processed/RESULTS.md").write_text("# Reference results\nestimate -0.005268\n")
    (tmp_path / "results").mkdir()
    shutil.copy(tmp_path / "data/processed/RESULTS.md", tmp_path / "results/RESULTS.md")
    (tmp_path / "results/reference_sha256.txt").write_text(R.hashes_text(tmp_path))
    return tmp_path


def _verify(root: Path) -> tuple[int, str]:
    return R.verify(root, root / "results/reference_sha256.txt", root / "results/RESULTS.md")


def test_reference_files_leave_out_caches_and_stamps(built):
    assert R.reference_files(built) == ["data/processed/RESULTS.md", "data/processed/estimates/x.parquet",
                                        "data/processed/power.csv", "figures/fig01.png"]


def test_verify_identical(built):
    code, text = _verify(built)
    assert code == 0 and "Grade: identical" in text


def test_verify_minor_difference_names_the_file(built):
    (built / "figures/fig01.png").write_bytes(b"png2")
    code, text = _verify(built)
    assert code == 1 and "minor differences" in text and "  figures/fig01.png" in text


def test_verify_headline_difference_shows_the_lines(built):
    (built / "data/processed/RESULTS.md").write_text("# Reference results\nestimate -0.005301\n")
    code, text = _verify(built)
    assert code == 1 and "not reproduced" in text
    assert "-estimate -0.005268" in text and "+estimate -0.005301" in text


def test_verify_missing_and_new_files(built):
    (built / "data/processed/power.csv").unlink()
    (built / "figures/fig99.png").write_bytes(b"new")
    code, text = _verify(built)
    assert code == 1 and "Files missing:\n  data/processed/power.csv" in text
    assert "Files new (no reference):\n  figures/fig99.png" in text


def test_verify_without_references_exits_2(built, capsys):
    code = R.main(["verify", "--root", str(built), "--hashes", str(built / "nope.txt"),
                   "--results", str(built / "results/RESULTS.md")])
    assert code == 2 and "nope.txt" in capsys.readouterr().err


def test_write_with_a_missing_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    code = R.main(["write", "--processed", str(tmp_path), "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "index_validity.csv: not found" in capsys.readouterr().err


def test_number_format():
    assert [R.num(v) for v in [-0.0052682535, 0.12061206, 2.2472116e-07, 6720, 0.0, -0.0, float("nan"), 1.0]] == \
        ["-0.005268", "0.1206", "2.247e-07", "6720", "0", "0", "", "1"]
    assert R.pct(0.22217261904761904) == "22.2%"


REAL_INPUTS = [f"data/processed/{n}" for n in ["claims_check.csv", "index_validity.csv", "power.csv",
                                                "multiverse_results.parquet", "multiverse_summary.json",
                                                "cleaning_log.csv", "estimates/.up-to-date"]]


@pytest.mark.build(*REAL_INPUTS)
def test_results_page_reads_the_outputs():
    text = R.results_markdown()
    assert text == R.results_markdown()  # deterministic
    sections = results_sections(text)
    # every estimate file's every row is there: its estimate, formatted, in the Estimates section
    for path in sorted(paths.ESTIMATES.glob("*.parquet")):
        if "." in path.stem:
            continue
        for value in pd.read_parquet(path)["estimate"].dropna():
            assert R.num(value) in sections["Estimates"], (path.name, value)
    summary = pd.read_json(paths.PROCESSED / "multiverse_summary.json", typ="series")
    share = R.pct(summary["share_ci_excludes_zero"])
    assert f"excludes zero in {share}" in sections["Multiverse (specification curve)"]
    claims = pd.read_csv(paths.PROCESSED / "claims_check.csv")
    holds = claims[(claims["claim_id"] == claims["claim_id"].iloc[0]) & (claims["reading"] == claims["reading"].iloc[0])
                   & (claims["metric"] == "capability_index")]
    n = holds["method"].nunique()
    assert f"| {R.METRIC_LABELS['capability_index']} | {(holds['passes'] == 'yes').sum()} of {n} |" in text


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(paths.ROOT), *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_makefile_refuses_old_make_and_lists_user_variables():
    for old in ["3.81", "4.2.1"]:
        run = _make("-n", f"MAKE_VERSION={old}", "help")
        assert run.returncode == 2 and f"GNU make >= 4.3 is required" in run.stderr and old in run.stderr
    run = _make("help")
    assert run.returncode == 0
    for name in ["JOBS=", "VENV=", "DUALUSE_DASK_SCHEDULER=", "verify-results", "update-results"]:
        assert name in run.stdout
