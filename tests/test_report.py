"""The HTML report: self-contained, every section present, every image a decodable PNG."""

import base64
import io
import re

import matplotlib.image
import pytest

from dnnreg.cli import main


@pytest.fixture
def report(tmp_path, mixed_frame):
    mixed_frame.to_csv(tmp_path / "t.csv", index=False)
    assert (
        main(
            [
                "--quiet",
                "train",
                str(tmp_path / "t.csv"),
                "--target",
                "y",
                "--out",
                str(tmp_path / "run"),
                "--diagnose",
                "--set",
                "max_iter=3",
                "--set",
                "hidden_layer_sizes=16,16",
                "--set",
                "residual=true",
            ]
        )
        == 0
    )
    assert main(["report", str(tmp_path / "run")]) == 0
    return (tmp_path / "run" / "report.html").read_text()


def test_report_holds_every_section_and_decodable_images(report):
    for title in (
        "Metrics",
        "Learning curves",
        "Network",
        "Predicted against actual",
        "Permutation feature importance",
        "Gradient norms",
        "Dead and saturated units",
        "Verdicts",
    ):
        assert f"<h2>{title}</h2>" in report
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report)
    assert len(images) == 6  # the sections above, less the two without figures
    for data in images:
        pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert "http://" not in report and "https://" not in report  # nothing fetched


def test_report_of_a_non_run_directory_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "not a complete run directory" in capsys.readouterr().err


def _chromium():
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "headless Chromium is absent (Debian: apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the 'test' extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_report_loads_in_headless_chromium_without_errors(report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report)
    browser = _chromium()
    try:
        browser.get(page.as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        browser.quit()
    assert len(images) == 6 and all(done and width > 0 for done, width in images)
    assert errors == []
