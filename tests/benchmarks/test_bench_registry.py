"""Dataset registry: split arithmetic for every entry, file lookup, reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.registry import DATA_DIR_ENV, REGISTRY, find_file, get_spec, read_dataset
from tests.benchmarks.bench_helpers import write_synthetic_csv

# Borders at L = 96 as written in shared/data/SOURCES.md (verified against Time-Series-Library).
EXPECTED_L96 = {
    "ETTh1": ((0, 8640), (8640 - 96, 11520), (11520 - 96, 14400)),
    "ETTh2": ((0, 8640), (8640 - 96, 11520), (11520 - 96, 14400)),
    "ETTm1": ((0, 34560), (34560 - 96, 46080), (46080 - 96, 57600)),
    "ETTm2": ((0, 34560), (34560 - 96, 46080), (46080 - 96, 57600)),
    "weather": ((0, 36887), (36887 - 96, 42157), (42157 - 96, 52696)),
    "electricity": ((0, 18412), (18412 - 96, 21044), (21044 - 96, 26304)),
    "traffic": ((0, 12280), (12280 - 96, 14036), (14036 - 96, 17544)),
    "exchange_rate": ((0, 5311), (5311 - 96, 6071), (6071 - 96, 7588)),
    "national_illness": ((0, 676), (676 - 96, 773), (773 - 96, 966)),
}
EXPECTED_SHAPES = {
    "ETTh1": (17420, 7),
    "ETTh2": (17420, 7),
    "ETTm1": (69680, 7),
    "ETTm2": (69680, 7),
    "weather": (52696, 21),
    "exchange_rate": (7588, 8),
    "national_illness": (966, 7),
    "electricity": (26304, 321),
    "traffic": (17544, 862),
}


def test_registry_names_are_the_issue_s():
    assert sorted(REGISTRY) == sorted(EXPECTED_L96)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_split_borders_at_lookback_96(name):
    spec = REGISTRY[name]
    borders = spec.split_borders(96)
    assert (borders.train, borders.val, borders.test) == EXPECTED_L96[name]
    assert (spec.n_rows, spec.n_variates) == EXPECTED_SHAPES[name]


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("lookback", [24, 96, 336])
def test_split_formulas(name, lookback):
    """TSLib's formulas for any L: val and test start L rows before the previous split ends."""
    spec = REGISTRY[name]
    b = spec.split_borders(lookback)
    if spec.split_kind == "custom":
        n = spec.n_rows
        num_train, num_test = int(0.7 * n), int(0.2 * n)
        assert b.train == (0, num_train)
        assert b.val == (num_train - lookback, n - num_test)
        assert b.test == (n - num_test - lookback, n)
    else:
        k = 1 if spec.split_kind == "ett_hour" else 4
        assert b.train == (0, k * 8640)
        assert b.val == (k * 8640 - lookback, k * 11520)
        assert b.test == (k * 11520 - lookback, k * 14400)
    assert b.val[0] == b.train[1] - lookback
    assert b.test[0] == b.val[1] - lookback


@pytest.mark.parametrize(
    ("name", "horizon", "expected"),
    [("ETTh1", 96, 2785), ("ETTm1", 96, 11425), ("weather", 96, 10444), ("exchange_rate", 96, 1422)],
)
def test_window_count_is_tslib_len(name, horizon, expected):
    borders = REGISTRY[name].split_borders(96)
    start, end = borders.test
    assert borders.n_windows("test", 96, horizon) == end - start - 96 - horizon + 1 == expected


def test_custom_split_follows_the_file_length():
    b = REGISTRY["exchange_rate"].split_borders(24, n_rows=1000)
    assert (b.train, b.val, b.test) == ((0, 700), (676, 800), (776, 1000))


def test_split_errors_name_the_parameter():
    with pytest.raises(ValueError, match="needs at least 14400 rows"):
        REGISTRY["ETTh1"].split_borders(96, n_rows=1000)
    with pytest.raises(ValueError, match="`lookback=700`"):
        REGISTRY["national_illness"].split_borders(700)
    with pytest.raises(ValueError, match="`lookback` must be a positive integer"):
        REGISTRY["ETTh1"].split_borders(0)
    with pytest.raises(ValueError, match="Unknown dataset `nope`"):
        get_spec("nope")


def test_get_spec_is_case_insensitive():
    assert get_spec("etth1").name == "ETTh1"


def test_missing_file_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no Darts cache
    with pytest.raises(FileNotFoundError) as info:
        find_file(get_spec("ETTh1"), tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "ETTh1.csv") in message
    assert str(tmp_path / "empty" / "ETTh1.csv.gz") in message
    assert "ETTh1Dataset" in message and DATA_DIR_ENV in message
    with pytest.raises(FileNotFoundError, match="Time-Series-Library"):
        find_file(get_spec("traffic"), tmp_path / "empty")


def test_lookup_order_env_and_darts_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    write_synthetic_csv(tmp_path / "env" / "exchange_rate.csv", 50, 8)
    assert find_file(get_spec("exchange_rate")) == tmp_path / "env" / "exchange_rate.csv"
    # ETT files fall back to Darts' cache, whose copies are byte-identical
    cached = tmp_path / "home" / ".darts" / "datasets" / "ETTh2.csv"
    write_synthetic_csv(cached, 50, 7)
    assert find_file(get_spec("ETTh2")) == cached
    # an explicit directory wins over the environment
    write_synthetic_csv(tmp_path / "explicit" / "exchange_rate.csv", 50, 8)
    assert find_file(get_spec("exchange_rate"), tmp_path / "explicit").parent == tmp_path / "explicit"


def test_read_drops_date_puts_ot_last_and_casts(tmp_path):
    frame = write_synthetic_csv(tmp_path / "national_illness.csv", 966, 7)
    loaded = read_dataset(get_spec("national_illness"), tmp_path)
    assert loaded.columns[-1] == "OT"
    assert "date" not in loaded.columns
    assert loaded.values.dtype == np.float32
    assert loaded.values.shape == (966, 7)
    np.testing.assert_array_equal(loaded.values[:, -1], frame["OT"].to_numpy(np.float32))


def test_reads_gzip_and_warns_on_unexpected_shape(tmp_path, caplog):
    frame = write_synthetic_csv(tmp_path / "x.csv", 500, 8)
    frame.to_csv(tmp_path / "exchange_rate.csv.gz", index=False)
    loaded = read_dataset(get_spec("exchange_rate"), tmp_path)
    assert loaded.path.name == "exchange_rate.csv.gz"
    assert loaded.values.shape == (500, 8)
    assert "registry expects (7588, 8)" in caplog.text


def test_rejects_nan(tmp_path):
    frame = write_synthetic_csv(tmp_path / "exchange_rate.csv", 100, 8)
    frame.iloc[5, 2] = np.nan
    frame.to_csv(tmp_path / "exchange_rate.csv", index=False)
    with pytest.raises(ValueError, match="NaN"):
        read_dataset(get_spec("exchange_rate"), tmp_path)


def _write_wide(path: Path, n_rows: int, n_variates: int) -> None:
    """A full-shape stand-in, written fast: small integers, 'OT' last as in the real files."""
    header = "date," + ",".join([*(str(i) for i in range(n_variates - 1)), "OT"])
    row_tail = "," + ",".join(str(i % 10) for i in range(n_variates))
    with path.open("w") as handle:
        handle.write(header + "\n")
        for r in range(n_rows):
            handle.write(f"r{r}{row_tail}\n")


@pytest.mark.parametrize("name", ["electricity", "traffic"])
def test_wide_datasets_on_full_shape_stand_ins(tmp_path, name, caplog):
    spec = get_spec(name)
    _write_wide(tmp_path / spec.file_name, spec.n_rows, spec.n_variates)
    loaded = read_dataset(spec, tmp_path)
    assert loaded.values.shape == (spec.n_rows, spec.n_variates)
    assert "registry expects" not in caplog.text
    borders = spec.split_borders(96, n_rows=loaded.values.shape[0])
    assert (borders.train, borders.val, borders.test) == EXPECTED_L96[name]
