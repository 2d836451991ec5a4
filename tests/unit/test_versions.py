"""run.json's versions: PySpark's even where pip did not install it (EMR's own Spark)."""

from importlib import metadata

import pyspark

from fruits_p8 import run_report


def test_pyspark_without_pip_metadata_reports_the_module_version(monkeypatch):
    real = metadata.version

    def no_pyspark_metadata(name: str) -> str:
        if name == "pyspark":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(run_report.metadata, "version", no_pyspark_metadata)
    found = run_report.versions()
    assert found["pyspark"] == pyspark.__version__
    assert found["numpy"] == real("numpy")
