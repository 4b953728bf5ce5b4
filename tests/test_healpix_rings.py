"""llama.science.healpix_rings against healpy: ring geometry and pixels within discs."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from llama.science.healpix_rings import disc_runs, ring_geometry


@pytest.mark.parametrize("order", [0, 1, 3, 6])
def test_ring_geometry_is_healpys(order):
    nside = 1 << order
    ring = np.arange(1, 4 * nside)
    z, sin_theta, size, offset, first = ring_geometry(nside, ring)
    assert size.sum() == 12 * nside**2 and np.array_equal(first[1:], np.cumsum(size)[:-1])
    pixel = np.arange(12 * nside**2)
    at = np.repeat(np.arange(ring.size), size)
    theta, phi = hp.pix2ang(nside, pixel)
    position = pixel - first[at]
    assert np.abs(np.cos(theta) - z[at]).max() < 1e-14
    assert np.abs(np.sin(theta) - sin_theta[at]).max() < 1e-14
    assert np.abs(phi - (position + offset[at]) * 2 * np.pi / size[at]).max() < 1e-12


def test_disc_runs_hold_exactly_the_pixels_healpy_finds():
    """Random discs of every size, centres on and next to both poles included: the same
    pixels as healpy.query_disc (centres within the radius), each once, up to pixels within
    1e-9 rad of the rim."""
    rng = np.random.default_rng(2)
    for k in range(300):
        theta = [0.0, np.pi, 1e-9, np.pi - 1e-9][k % 4] if k % 10 == 0 else np.arccos(rng.uniform(-1, 1))
        phi, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.001, 0.3) if k % 7 else rng.uniform(0.5, 3.3)
        nside = 1 << int(rng.integers(0, 9 if radius < 0.5 else 6))
        runs = disc_runs(nside, np.array([np.cos(theta)]), np.array([np.sin(theta)]),
                         np.array([phi]), np.array([radius]))
        position = runs.cells()
        run = runs.run_of(np.arange(position.size))
        assert np.array_equal(run, np.repeat(np.arange(runs.length.size), runs.length))
        mine = runs.ring_first[run] + position
        assert np.unique(mine).size == mine.size
        vector = hp.ang2vec(theta, phi)
        differ = np.setxor1d(mine, hp.query_disc(nside, vector, radius))
        if differ.size:
            rim = np.arccos(np.clip(np.array(hp.pix2vec(nside, differ)).T @ vector, -1, 1))
            assert np.abs(rim - radius).max() < 1e-9
        longitude = runs.longitude(run, position)
        assert np.allclose(np.exp(1j * longitude), np.exp(1j * hp.pix2ang(nside, mine)[1]), atol=1e-12)


def test_disc_runs_of_many_discs_are_those_of_each_alone():
    rng = np.random.default_rng(4)
    z = rng.uniform(-1, 1, 50)
    phi, radius = rng.uniform(0, 2 * np.pi, 50), rng.uniform(0.01, 0.3, 50)
    together = disc_runs(64, z, np.sqrt(1 - z**2), phi, radius)
    for k in (0, 17, 49):
        alone = disc_runs(64, z[k:k + 1], np.sqrt(1 - z[k:k + 1] ** 2), phi[k:k + 1], radius[k:k + 1])
        mine = together.disc == k
        assert np.array_equal(together.start[mine], alone.start)
        assert np.array_equal(together.length[mine], alone.length)
        assert np.array_equal(together.ring_first[mine], alone.ring_first)
