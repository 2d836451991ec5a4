"""--precision auto: bfloat16 only where the executors' CPU runs it natively (faked flags)."""

from types import SimpleNamespace

import pytest

from fruits_p8.features import precision as precision_module
from fruits_p8.stages import featurize

AVX512_BF16 = "processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
NO_BF16 = "processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n"
LOCAL = SimpleNamespace(sparkContext=SimpleNamespace(master="local[2]"))


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    """Point the CPU probe at a fake /proc/cpuinfo holding the given text."""
    def use(text: str | None) -> None:
        path = tmp_path / "cpuinfo"
        if text is not None:
            path.write_text(text)
        monkeypatch.setattr(featurize, "cpu_runs_bfloat16_natively",
                            lambda: precision_module.cpu_runs_bfloat16_natively(str(path)))
    return use


@pytest.mark.parametrize(("flags", "expected"), [
    (AVX512_BF16, "bfloat16"), (NO_BF16, "float32"), (None, "float32")])
def test_auto_follows_the_cpu_flags(cpu, flags, expected):
    cpu(flags)
    chosen, why = featurize.choose_precision("auto", LOCAL)
    assert chosen == expected and why.startswith("auto:")


def test_an_explicit_precision_is_kept_whatever_the_cpu(cpu):
    cpu(NO_BF16)
    assert featurize.choose_precision("bfloat16", LOCAL) == ("bfloat16", "asked for")
    cpu(AVX512_BF16)
    assert featurize.choose_precision("float32", LOCAL) == ("float32", "asked for")


def test_auto_with_a_fitted_basis_takes_the_basis_precision(cpu):
    cpu(AVX512_BF16)
    assert featurize.choose_precision("auto", LOCAL, keep="float32")[0] == "float32"


def test_a_local_master_asks_no_spark_job(cpu):
    cpu(AVX512_BF16)
    no_jobs = SimpleNamespace(sparkContext=SimpleNamespace(
        master="local[*]", parallelize=lambda *a: pytest.fail("a probe job ran")))
    assert featurize.choose_precision("auto", no_jobs)[0] == "bfloat16"
