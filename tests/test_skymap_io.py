"""llama.io.skymap against the real public sky maps in ../shared/data/gw_skymaps."""

from __future__ import annotations

import dataclasses
import gzip
import math
from pathlib import Path

import astropy_healpix as ah
import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import angular_separation
from astropy.io import fits
from conftest import shared_path
from scipy import integrate, stats

from llama.errors import InputError
from llama.io.skymap import read_skymap, skymap_from_bytes, write_skymap
from llama.io.skymap_geometry import SkyMap, rasterize
from llama.io.skymap_simulated import simulated_skymap

# Facts from ../shared/data/README.md section 1: flat NSIDE (None = multi-order), whether the
# file has DISTMU/DISTSIGMA/DISTNORM, header DISTMEAN (Mpc), and max_prob_radec_deg.
MAPS = {
    "GW150914_bayestar_gstlal_C01.fits.gz": (512, False, None, (129.427, -69.979)),
    "GW170817_skymap.fits.gz": (1024, True, 38.034082, (196.304, -21.302)),
    "GW190425_S190425z_bayestar.fits.gz": (256, True, 154.61945, (242.578, 22.831)),
    "GW190814_PublicationSamples.multiorder.fits": (None, True, 240.7345, None),
    "MS181101ab_userguide_bayestar.multiorder.fits": (None, True, 39.769996, None),
    "MS181101ab_userguide_bayestar.slim.fits.gz": (2048, False, 39.769996, (194.304, -17.857)),
    "MS181101ab_userguide_combined-ext.multiorder.fits": (None, True, 39.928978, None),
    "MS220722v_bayestar.multiorder.fits": (None, True, 125.95877, None),
    "S190814bv_5_LALInference.v1.fits.gz": (1024, True, 267.40164, (12.832, -25.241)),
    "S251112cm_bayestar.multiorder.fits": (None, True, 96.385199, None),
}
MOC_MAPS = [name for name, facts in MAPS.items() if facts[0] is None]
SMALL_FLAT = "GW190425_S190425z_bayestar.fits.gz"
SMALL_MOC = "S251112cm_bayestar.multiorder.fits"


def gw_path(name: str) -> Path:
    return shared_path("gw_skymaps", name)


@pytest.fixture(scope="module")
def small_moc() -> SkyMap:
    return read_skymap(gw_path(SMALL_MOC))


@pytest.fixture(scope="module")
def small_flat() -> SkyMap:
    return read_skymap(gw_path(SMALL_FLAT))


@pytest.fixture(scope="module")
def ligo_io():
    import ligo.skymap.io

    return ligo.skymap.io


def nested_uniq(skymap: SkyMap) -> np.ndarray:
    """NUNIQ index of every pixel (flat maps too)."""
    if skymap.is_moc:
        return skymap.uniq
    return 4 * skymap.nside**2 + np.arange(skymap.npix)


def centres_deg(uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres from NUNIQ via astropy-healpix (independent of healpy)."""
    level, ipix = ah.uniq_to_level_ipix(uniq)
    lon, lat = ah.healpix_to_lonlat(ipix, ah.level_to_nside(level), order="nested")
    return lon.deg, lat.deg


def separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation (deg) of (ra1, dec1) and (ra2, dec2), all in deg."""
    return np.degrees(angular_separation(*map(np.radians, (ra1, dec1, ra2, dec2))))


def sha256sums() -> dict[str, str]:
    lines = shared_path("SHA256SUMS").read_text().splitlines()
    return {Path(path).name: digest for digest, path in (line.split() for line in lines if line)}


# --------------------------------------------------------------------------------------------
# Reading every real map


@pytest.mark.parametrize("name", MAPS)
def test_read_real_map(name: str) -> None:
    nside, has_distance, distmean, max_radec = MAPS[name]
    skymap = read_skymap(gw_path(name))
    assert skymap.prob.dtype == np.float64
    assert skymap.prob.sum() == pytest.approx(1.0, abs=1e-6)
    assert (skymap.distmu is not None) is has_distance
    for layer in (skymap.distmu, skymap.distsigma, skymap.distnorm):
        assert (layer is not None) is has_distance
        assert layer is None or layer.shape == skymap.prob.shape
    assert skymap.order.dtype == np.int64
    assert skymap.pixel_area().sum() == pytest.approx(4 * np.pi, rel=1e-12)
    if nside is None:
        assert skymap.is_moc and skymap.nside is None
        assert skymap.uniq.dtype == np.int64 and skymap.uniq.shape == skymap.prob.shape
        assert len(np.unique(skymap.order)) > 1
    else:
        assert not skymap.is_moc and skymap.uniq is None
        assert skymap.nside == nside and skymap.npix == 12 * nside**2
        peak = int(np.argmax(skymap.prob))
        ra, dec = hp.pix2ang(nside, peak, nest=True, lonlat=True)
        pixel_deg = math.degrees(math.sqrt(4 * math.pi / skymap.npix))
        assert separation_deg(ra, dec, *max_radec) <= pixel_deg
    if distmean is None:
        assert skymap.meta["distmean"] is None and skymap.distance_mean() is None
    else:
        assert skymap.meta["distmean"] == pytest.approx(distmean, rel=1e-7)
        assert skymap.distance_mean() == skymap.meta["distmean"]
    assert isinstance(skymap.meta["instruments"], list)
    assert skymap.meta["path"] == str(gw_path(name))
    assert skymap.meta["sha256"] == sha256sums()[name]


def test_header_meta(small_moc: SkyMap) -> None:
    assert small_moc.meta == {
        "object": "G617545",
        "date_obs": "2025-11-12T15:18:45.363443",
        "mjd_obs": pytest.approx(60991.638, abs=1e-3),
        "instruments": ["H1", "L1", "V1"],
        "creator": "BAYESTAR",
        "origin": "LIGO/Virgo/KAGRA",
        "distmean": pytest.approx(96.385199, rel=1e-7),
        "diststd": pytest.approx(28.868443, rel=1e-7),
        "path": str(gw_path(SMALL_MOC)),
        "sha256": sha256sums()[SMALL_MOC],
    }


@pytest.mark.parametrize("name", [*MOC_MAPS, SMALL_FLAT])
def test_matches_ligo_skymap(name: str, ligo_io) -> None:
    from ligo.skymap import moc

    ours = read_skymap(gw_path(name))
    theirs = ligo_io.read_sky_map(str(gw_path(name)), moc=True).as_array()
    if ours.is_moc:
        by_uniq = np.argsort(theirs["UNIQ"])
        theirs = theirs[by_uniq[np.searchsorted(theirs["UNIQ"][by_uniq], ours.uniq)]]
        np.testing.assert_array_equal(theirs["UNIQ"], ours.uniq)
        level, _ = ah.uniq_to_level_ipix(ours.uniq)
        area = ah.nside_to_pixel_area(ah.level_to_nside(level)).value
    else:  # ligo.skymap merges equal sibling pixels of a flat map into a multi-order map
        theirs = moc.rasterize(theirs, order=int(ours.order[0]))
        area = hp.nside2pixarea(ours.nside)
    assert len(theirs) == ours.npix
    prob = theirs["PROBDENSITY"] * area
    np.testing.assert_allclose(ours.prob, prob / prob.sum(), rtol=1e-12)
    for column in ("DISTMU", "DISTSIGMA", "DISTNORM"):
        np.testing.assert_allclose(getattr(ours, column.lower()), theirs[column], rtol=1e-12)


def test_distance_mean_from_layers(small_moc: SkyMap) -> None:
    """Without DISTMEAN, the mean comes from the ansatz layers; BAYESTAR's header agrees."""
    no_header = dataclasses.replace(small_moc, meta={**small_moc.meta, "distmean": None})
    assert no_header.distance_mean() == pytest.approx(small_moc.meta["distmean"], rel=1e-4)


def test_ring_map_is_reordered_to_nested(small_flat: SkyMap, tmp_path: Path) -> None:
    path = tmp_path / "ring.fits"
    ring = [hp.reorder(values, n2r=True) for values in (small_flat.prob, small_flat.distmu)]
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("PROB", "D", array=ring[0]), fits.Column("DISTMU", "D", array=ring[1])]
        + [fits.Column(name, "D", array=ring[1]) for name in ("DISTSIGMA", "DISTNORM")]
    )
    hdu.header.update(ORDERING="RING", NSIDE=small_flat.nside)
    hdu.writeto(path)
    skymap = read_skymap(path)
    np.testing.assert_allclose(skymap.prob, small_flat.prob, rtol=1e-14)
    np.testing.assert_array_equal(skymap.distmu, small_flat.distmu)


# --------------------------------------------------------------------------------------------
# Rejecting bad input


def edited_copy(tmp_path: Path, name: str, edit=None, header: dict | None = None) -> Path:
    """Copy of a real map, its table edited in place by edit(data) and its header updated."""
    with fits.open(gw_path(name)) as hdul:
        table = fits.BinTableHDU(hdul[1].data.copy(), hdul[1].header)
    if edit is not None:
        edit(table.data)
    table.header.update(header or {})
    path = tmp_path / f"bad_{name.removesuffix('.gz')}"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


def set_value(column: str, index: int, value: float):
    def edit(data: fits.FITS_rec) -> None:
        data[column][index] = value

    return edit


def scale(column: str, factor: float):
    def edit(data: fits.FITS_rec) -> None:
        data[column] *= factor

    return edit


def without_column(tmp_path: Path, name: str, column: str) -> Path:
    with fits.open(gw_path(name)) as hdul:
        hdu = hdul[1]
        kept = [col for col in hdu.columns if col.name != column]
        table = fits.BinTableHDU.from_columns(kept, header=hdu.header)
    path = tmp_path / f"no_{column}.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


def truncated_gzip(tmp_path: Path) -> Path:
    data = gw_path(SMALL_FLAT).read_bytes()
    path = tmp_path / "truncated.fits.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def text_file(tmp_path: Path, suffix: str = ".fits") -> Path:
    path = tmp_path / f"notes{suffix}"
    text = b"SIMPLE sky map? no, just text\n"
    path.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    return path


BAD_MAPS = {
    "truncated gzip": (truncated_gzip, "truncated gzip"),
    "not FITS": (text_file, "not a FITS file"),
    "gzipped, not FITS": (lambda tmp: text_file(tmp, ".fits.gz"), "not a FITS file"),
    "missing": (lambda tmp: tmp / "absent.fits.gz", "no such file"),
    "NaN": (lambda tmp: edited_copy(tmp, SMALL_MOC, set_value("PROBDENSITY", 7, np.nan)), "NaN"),
    "negative": (
        lambda tmp: edited_copy(tmp, SMALL_MOC, set_value("PROBDENSITY", 7, -1e-3)),
        "negative",
    ),
    "sums to 0.5": (lambda tmp: edited_copy(tmp, SMALL_MOC, scale("PROBDENSITY", 0.5)), "is 0.5,"),
    "flat sums to 0.5": (lambda tmp: edited_copy(tmp, SMALL_FLAT, scale("PROB", 0.5)), "is 0.5,"),
    "no PROB column": (lambda tmp: without_column(tmp, SMALL_FLAT, "PROB"), "PROB"),
    "no PROBDENSITY column": (
        lambda tmp: without_column(tmp, SMALL_MOC, "PROBDENSITY"),
        "PROBDENSITY",
    ),
    "NSIDE mismatch": (
        lambda tmp: edited_copy(tmp, SMALL_FLAT, header={"NSIDE": 128}),
        "NSIDE=128",
    ),
    "unknown ORDERING": (
        lambda tmp: edited_copy(tmp, SMALL_FLAT, header={"ORDERING": "ZIGZAG"}),
        "ORDERING",
    ),
    "repeated UNIQ": (  # row 0 of S251112cm is UNIQ 1024
        lambda tmp: edited_copy(tmp, SMALL_MOC, set_value("UNIQ", 1, 1024)),
        "repeat",
    ),
}


@pytest.mark.parametrize("case", BAD_MAPS)
def test_rejects_bad_map(case: str, tmp_path: Path) -> None:
    make, fragment = BAD_MAPS[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_skymap(path)
    message = str(info.value)
    assert path.name in message and fragment in message
    assert "\n" not in message


def card_edited(data: bytes, keyword: str, value: bytes) -> bytes:
    """``data`` with the value of the first FITS card ``keyword`` in the table header replaced
    byte for byte (values astropy would refuse to write)."""
    at = data.index(keyword.encode().ljust(8) + b"=", 2880)
    return data[:at] + (keyword.encode().ljust(8) + b"= " + value).ljust(80)[:80] + data[at + 80:]


@pytest.mark.parametrize(
    "keyword, value, fragment",
    [
        ("TFORM1", b"'QQ      '", "sky map"),  # was AttributeError: 'NoneType' ... 'upper'
        ("TFORM2", b"'QQ      '", "Invalid column format: QQ"),
        ("NAXIS2", b"abc\xff", "no binary table"),  # an unreadable card: not a table
        ("NAXIS2", b"9" * 19, "not a readable FITS sky map"),
        ("NAXIS1", b"48", "row size"),
        ("ORDERING", b"'NESTED  '", "PROB column"),
    ],
)
def test_hostile_headers_are_one_line_errors(keyword, value, fragment) -> None:
    data = card_edited(gw_path(SMALL_MOC).read_bytes(), keyword, value)
    with pytest.raises(InputError) as info:
        skymap_from_bytes(data, "<alert.json: embedded sky map>")
    message = str(info.value)
    assert message.startswith("<alert.json: embedded sky map>: ") and fragment in message, message
    assert "\n" not in message


def test_from_bytes_equals_from_file() -> None:
    path = gw_path(SMALL_FLAT)
    from_bytes = skymap_from_bytes(path.read_bytes(), path)
    from_file = read_skymap(path)
    assert np.array_equal(from_bytes.prob, from_file.prob) and from_bytes.meta == from_file.meta


# --------------------------------------------------------------------------------------------
# disc()


# centres near each map's most probable pixel (where the multi-order map is finest)
DISC_CENTRES = {"small_moc": (348.1234, -19.8765), "small_flat": (242.1234, 22.4321)}


@pytest.mark.parametrize("fixture", DISC_CENTRES)
@pytest.mark.parametrize("radius", [0.7, 4.0, 33.0])
def test_disc_matches_brute_force(fixture: str, radius: float, request) -> None:
    skymap: SkyMap = request.getfixturevalue(fixture)
    ra0, dec0 = DISC_CENTRES[fixture]
    ra, dec = centres_deg(nested_uniq(skymap))
    expected = np.flatnonzero(separation_deg(ra, dec, ra0, dec0) <= radius)
    pixels = skymap.disc(ra0, dec0, radius)
    assert pixels.index.dtype == np.int64 and len(expected) > 0
    np.testing.assert_array_equal(np.sort(pixels.index), expected)
    np.testing.assert_array_equal(pixels.prob, skymap.prob[pixels.index])
    np.testing.assert_allclose(pixels.dec, dec[pixels.index], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(pixels.xyz, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(pixels.area, skymap.pixel_area()[pixels.index])


@pytest.mark.parametrize("fixture", ["small_moc", "small_flat"])
def test_disc_everything(fixture: str, request) -> None:
    skymap: SkyMap = request.getfixturevalue(fixture)
    pixels = skymap.disc(10.0, -5.0, 180.0)
    np.testing.assert_array_equal(pixels.index, np.arange(skymap.npix))
    assert pixels.prob.sum() == pytest.approx(1.0, abs=1e-12)
    assert pixels.area.sum() == pytest.approx(4 * np.pi, rel=1e-12)


def test_disc_rejects_negative_radius(small_moc: SkyMap) -> None:
    with pytest.raises(InputError):
        small_moc.disc(10.0, -5.0, -1.0)


def test_pixel_radec(small_moc: SkyMap) -> None:
    ra, dec = small_moc.pixel_radec()
    expected_ra, expected_dec = centres_deg(small_moc.uniq)
    assert np.max(separation_deg(ra, dec, expected_ra, expected_dec)) < 1e-9


# --------------------------------------------------------------------------------------------
# rasterize()


@pytest.mark.parametrize("nside", [256, 512])
def test_rasterize_multi_order(small_moc: SkyMap, nside: int, ligo_io) -> None:
    from ligo.skymap import moc

    flat = rasterize(small_moc, nside)
    assert not flat.is_moc and flat.nside == nside and flat.npix == 12 * nside**2
    assert flat.prob.sum() == pytest.approx(1.0, abs=1e-9)
    ra, dec = small_moc.pixel_radec()
    peak = int(np.argmax(small_moc.prob))
    within = [m.disc(ra[peak], dec[peak], 10.0).prob.sum() for m in (small_moc, flat)]
    assert within[1] == pytest.approx(within[0], abs=1e-3)
    theirs = moc.rasterize(
        ligo_io.read_sky_map(str(gw_path(SMALL_MOC)), moc=True), order=int(flat.order[0])
    )
    np.testing.assert_allclose(flat.prob / flat.pixel_area(), theirs["PROBDENSITY"], rtol=1e-9)
    for column in ("DISTMU", "DISTSIGMA", "DISTNORM"):
        np.testing.assert_allclose(getattr(flat, column.lower()), theirs[column], rtol=1e-9)


@pytest.mark.parametrize("nside", [64, 256, 512])
def test_rasterize_flat(small_flat: SkyMap, nside: int) -> None:
    flat = rasterize(small_flat, nside)
    expected = hp.ud_grade(small_flat.prob, nside, order_in="NESTED", power=-2)
    np.testing.assert_allclose(flat.prob, expected, rtol=1e-12)
    assert flat.prob.sum() == pytest.approx(1.0, abs=1e-9)
    if nside >= small_flat.nside:  # children inherit their parent's layers
        parent = np.arange(flat.npix) >> (2 * (flat.order[0] - small_flat.order[0]))
        np.testing.assert_array_equal(flat.distmu, small_flat.distmu[parent])


# --------------------------------------------------------------------------------------------
# write_skymap()


def assert_same_map(read_back: SkyMap, original: SkyMap) -> None:
    assert read_back.nside == original.nside and read_back.is_moc == original.is_moc
    if original.is_moc:
        np.testing.assert_array_equal(read_back.uniq, original.uniq)
    np.testing.assert_allclose(read_back.prob, original.prob, rtol=1e-13)
    for layer in ("distmu", "distsigma", "distnorm"):
        np.testing.assert_array_equal(getattr(read_back, layer), getattr(original, layer))
    for key, value in original.meta.items():
        if key not in ("path", "sha256"):
            assert read_back.meta[key] == value, key


@pytest.mark.parametrize("fixture", ["small_moc", "small_flat"])
@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
def test_write_round_trip(fixture: str, suffix: str, request, tmp_path: Path) -> None:
    original: SkyMap = request.getfixturevalue(fixture)
    path = tmp_path / f"copy{suffix}"
    path.write_text("an older version, replaced atomically")
    write_skymap(original, path)
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left behind
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is suffix.endswith(".gz")
    assert_same_map(read_skymap(path), original)


def test_write_simulated_round_trip(tmp_path: Path) -> None:
    original = simulated_skymap(100.0, 45.0, 3.0)
    write_skymap(original, tmp_path / "sim.fits")
    read_back = read_skymap(tmp_path / "sim.fits")
    assert_same_map(read_back, original)
    assert read_back.meta["creator"] == "llama (SIMULATED)"
    assert read_back.meta["object"] == "SIMULATED"


# --------------------------------------------------------------------------------------------
# simulated_skymap() and sample_sources()


def test_simulated_skymap() -> None:
    skymap = simulated_skymap(40.0, -20.0, 2.0, distmean=150.0, diststd=40.0)
    assert skymap.is_moc and 1000 < skymap.npix < 10000
    assert set(np.unique(skymap.order)) == set(range(3, 9))
    assert skymap.prob.sum() == pytest.approx(1.0, abs=1e-12)
    assert skymap.pixel_area().sum() == pytest.approx(4 * np.pi, rel=1e-12)
    assert skymap.meta["creator"] == "llama (SIMULATED)"
    ra, dec = skymap.pixel_radec()
    peak = int(np.argmax(skymap.prob))
    pixel_deg = math.degrees(math.sqrt(skymap.pixel_area()[peak]))
    assert separation_deg(ra[peak], dec[peak], 40.0, -20.0) <= pixel_deg
    # constant ansatz: normalised by DISTNORM, with the requested conditional mean and std
    mu, sigma, norm = skymap.distmu[0], skymap.distsigma[0], skymap.distnorm[0]
    assert np.all(skymap.distmu == mu) and np.all(skymap.distnorm == norm)
    moments = [
        integrate.quad(
            lambda r, k=k: norm * r ** (2 + k) * stats.norm.pdf(r, mu, sigma), 0, np.inf
        )[0]
        for k in range(3)
    ]
    assert moments[0] == pytest.approx(1.0, rel=1e-9)
    assert moments[1] == pytest.approx(150.0, rel=1e-9)
    assert math.sqrt(moments[2] - moments[1] ** 2) == pytest.approx(40.0, rel=1e-6)
    no_header = dataclasses.replace(skymap, meta={**skymap.meta, "distmean": None})
    assert no_header.distance_mean() == pytest.approx(150.0, rel=1e-9)


def test_simulated_skymap_seed_scatters_the_blob() -> None:
    first, again = (simulated_skymap(200.0, 60.0, 1.0, seed=7) for _ in range(2))
    np.testing.assert_array_equal(first.prob, again.prob)
    ra, dec = first.pixel_radec()
    peak = int(np.argmax(first.prob))
    assert 0.01 < separation_deg(ra[peak], dec[peak], 200.0, 60.0) < 5.0


@pytest.mark.parametrize(
    "kwargs",
    [dict(sigma_deg=0.0), dict(dec_deg=91.0), dict(diststd=80.0), dict(max_order=30)],
)
def test_simulated_skymap_rejects_bad_parameters(kwargs: dict) -> None:
    arguments = dict(ra_deg=1.0, dec_deg=2.0, sigma_deg=3.0) | kwargs
    with pytest.raises(InputError):
        simulated_skymap(**arguments)


def test_sample_sources_simulated() -> None:
    skymap = simulated_skymap(40.0, -20.0, 2.0, distmean=150.0, diststd=40.0)
    ra, dec, distance = skymap.sample_sources(np.random.default_rng(2024), 20000)
    mean_vector = hp.ang2vec(ra, dec, lonlat=True).mean(axis=0)
    mean_ra, mean_dec = hp.vec2ang(mean_vector, lonlat=True)
    assert separation_deg(mean_ra[0], mean_dec[0], 40.0, -20.0) < 0.2
    assert np.mean(distance) == pytest.approx(150.0, rel=0.05)
    assert np.std(distance) == pytest.approx(40.0, rel=0.05)
    assert np.all(distance > 0)
    positions = np.unique(np.column_stack([ra, dec]), axis=0)
    assert len(positions) == ra.size  # uniform inside pixels, not snapped to their centres
    again = skymap.sample_sources(np.random.default_rng(2024), 20000)
    for drawn, repeated in zip((ra, dec, distance), again, strict=True):
        np.testing.assert_array_equal(drawn, repeated)


def test_sample_sources_real_map(small_moc: SkyMap) -> None:
    """Every source lies in a pixel with probability; distances follow the layers."""
    ra, dec, distance = small_moc.sample_sources(np.random.default_rng(1), 20000)
    level, ipix = ah.uniq_to_level_ipix(small_moc.uniq)
    deepest = int(level.max())
    first = ipix << (2 * (deepest - level))  # first descendant of each pixel at `deepest`
    by_first = np.argsort(first)
    hit = hp.ang2pix(2**deepest, ra, dec, nest=True, lonlat=True)
    containing = by_first[np.searchsorted(first[by_first], hit, side="right") - 1]
    assert np.all(small_moc.prob[containing] > 0)
    assert np.nanmean(distance) == pytest.approx(small_moc.distance_mean(), rel=0.02)
    assert np.mean(np.isnan(distance)) < 0.01  # only pixels without a distance estimate


def test_sample_sources_without_distance() -> None:
    skymap = read_skymap(gw_path("GW150914_bayestar_gstlal_C01.fits.gz"))
    ra, dec, distance = skymap.sample_sources(np.random.default_rng(0), 1000)
    assert np.all(np.isnan(distance))
    pixels = hp.ang2pix(skymap.nside, ra, dec, nest=True, lonlat=True)
    assert np.all(skymap.prob[pixels] > 0)
