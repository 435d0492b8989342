"""Geocode an Entity List entry to a province, by rule, from the gazetteer in the raw data.

Gazetteer (:func:`load_gazetteer`): ``data/raw/yearbook-sci-tech/BasicDistrict.rda`` (3,567 places with GB/T 2260
codes, Chinese names and tone-free pinyin; parent links give the level: province, prefecture, county) plus the
province identity table (:mod:`analysis.provinces`) and the aliases in ``configs/shocks.yaml``. Only the 31
provinces and Hong Kong are kept (Hong Kong is a flag of its own, never a province; Taiwan and Macau are dropped).

Shanxi/Shaanxi: the gazetteer spells both 山西 and 陕西 ``shanxi`` (tone-free pinyin). Province romanisations are
taken from the identity table first (``Shanxi`` 140000, ``Shaanxi`` 610000); a gazetteer spelling that is already a
different province's key is dropped, so ``shanxi`` never means 陕西 and ``Shaanxi`` always does.

Rule (:func:`geocode_entity`), applied to each field in ``geocode.fields`` order (address, entity name, the
transcription's city field):

1. Find every place named in the field: Latin words (case-folded, apostrophes dropped so ``Xi'an`` is ``xian``;
   runs of up to three words joined, so ``Hong Kong`` is ``hongkong``) and Chinese names as substrings. A name
   followed by a street word (``Dali Road``, ``中山路``) is a street, not a place. Gazetteer keys shorter than
   four letters are ignored (``a.k.a.``); aliases are exempt.
2. Rank: province > prefecture-level city > county. County names count only in addresses and in parentheses in a
   name (``Hoshine Silicon Industry (Shanshan)``), because short county names collide with company words.
3. At the best rank present: one province (or Hong Kong) -> the field decides; more than one -> the field is
   ambiguous (``Suzhou`` is 苏州 in Jiangsu and 宿州 in Anhui; ``Taizhou``, ``Fuzhou`` likewise).
4. The first deciding field wins; if another field decides a different province, or an earlier field was
   ambiguous among provinces that exclude the decision, the entry is a ``conflict``. The record's country code
   (HK) must agree; with no place found, country HK alone gives Hong Kong.

Where the fields do not decide, two hints may (see :func:`geocode_entity`): the transcription's own province
settles an ambiguous match it is a candidate of (the three ``Suzhou`` rows, transcribed Jiangsu), and the
hand-checked name -> province table ``configs/entity_locations.yaml`` (one row per entity, each with its basis and
source) places entities whose name carries no place (``IFLYTEK`` -> Anhui). ``geo_basis`` records which decided.

Statuses: ``province``, ``hong_kong``, ``ambiguous``, ``conflict``, ``unresolved``. The last three are listed for
the user, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.io import DataError
from analysis.provinces import PROVINCE_CODES, identity_table

HK = "HK"
MUNICIPALITIES = (110000, 120000, 310000, 500000)
LEVELS = {"province": 3, "prefecture": 2, "county": 1}
_CJK = re.compile(r"[\u3400-\u9fff]")
_OPEN = "([（【"
_CLOSE = ")]）】"
_MIN_KEY_LENGTH = 4


@dataclass(frozen=True)
class Place:
    """A gazetteer entry: ``province`` is a GB province code (int) or :data:`HK`."""

    code: str
    province: int | str
    level: str
    name: str


@dataclass
class Gazetteer:
    latin: dict[str, list[Place]] = field(default_factory=dict)
    chinese: dict[str, list[Place]] = field(default_factory=dict)
    street_words: frozenset[str] = frozenset()
    direction_words: frozenset[str] = frozenset()

    def add(self, key: str, place: Place, alias: bool = False) -> None:
        if _CJK.search(key):
            index, k = self.chinese, key
        else:
            index, k = self.latin, latin_key(key)
            if not alias and len(k) < _MIN_KEY_LENGTH:
                return
        if not k:
            return
        bucket = index.setdefault(k, [])
        if place not in bucket:
            bucket.append(place)


def latin_key(text: str) -> str:
    """Case-folded ASCII letters and digits only: ``"Xi'an"`` -> ``"xian"``, ``"Hong Kong"`` -> ``"hongkong"``."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _level_of_code(code: str) -> str:
    if code == HK or code.endswith("0000"):
        return "province"
    return "prefecture" if code.endswith("00") else "county"


def _province_of_code(code: str) -> int | str:
    return HK if code == HK or code.startswith("81") else int(code[:2] + "0000")


def load_gazetteer(aliases: dict[str, str] | None = None, street_words=(), direction_words=(),
                   district_path: Path = paths.YEARBOOK / "BasicDistrict.rda",
                   identity: pd.DataFrame | None = None) -> Gazetteer:
    """Build the gazetteer from ``BasicDistrict.rda``, the identity table and the configured aliases."""
    import pyreadr

    gaz = Gazetteer(street_words=frozenset(w.lower() for w in street_words if not _CJK.search(w)) |
                    frozenset(w for w in street_words if _CJK.search(w)),
                    direction_words=frozenset(w.lower() for w in direction_words))
    ident = identity_table() if identity is None else identity
    # 1. Provinces from the identity table (authoritative spellings, incl. Shaanxi with double a).
    for rec in ident.itertuples():
        place = Place(str(rec.province_code), int(rec.province_code), "province", rec.name_cn)
        for key in (rec.pinyin, rec.province_en, rec.name_cn, rec.name_cn_full):
            gaz.add(key, place)

    district = pyreadr.read_r(district_path)["BasicDistrict"]
    for col in ("id", "name", "parent_id", "pinyin", "suffix", "code"):
        if col not in district.columns:
            raise DataError(district_path, "missing column", column=col)
    by_id = {r.id: r for r in district.itertuples()}
    roots = {}  # id -> (root province code, depth)

    def root_of(i: str, seen=()):
        if i in roots:
            return roots[i]
        rec = by_id[i]
        if rec.parent_id in ("0", 0, None) or rec.parent_id not in by_id or i in seen:
            roots[i] = (str(rec.code), 1)
        else:
            code, depth = root_of(rec.parent_id, seen + (i,))
            roots[i] = (code, depth + 1)
        return roots[i]

    valid_roots = {str(c) for c in PROVINCE_CODES} | {"810000"}
    for rec in district.itertuples():
        root, depth = root_of(rec.id)
        if root not in valid_roots:
            continue  # Taiwan, Macau
        province = HK if root == "810000" else int(root)
        if depth == 1:
            if province == HK:
                place = Place(HK, HK, "province", rec.name)
                for key in (rec.name, rec.name + str(rec.suffix or ""), rec.pinyin):
                    gaz.add(key, place)
            else:
                # Gazetteer pinyin for a province only where it does not name another province (shanxi for 陕西).
                place = Place(root, province, "province", rec.name)
                k = latin_key(rec.pinyin)
                if all(p.province == province for p in gaz.latin.get(k, [])):
                    gaz.add(rec.pinyin, place)
            continue
        # Children of the four municipalities are districts and counties: county level, like elsewhere.
        level = "prefecture" if depth == 2 and province not in MUNICIPALITIES else "county"
        place = Place(HK if province == HK else str(rec.code), province, level, rec.name)
        names = {rec.name}
        if isinstance(rec.suffix, str) and rec.suffix:
            names.add(rec.name + rec.suffix)
        for key in names:
            if len(key) >= 2:
                gaz.add(key, place)
        if isinstance(rec.pinyin, str):
            gaz.add(rec.pinyin, place)
    for key, code in (aliases or {}).items():
        code = str(code)
        gaz.add(key, Place(code, _province_of_code(code), _level_of_code(code), key), alias=True)
    return gaz


@dataclass(frozen=True)
class Match:
    place: Place
    text: str
    in_parentheses: bool


def _paren_mask(text: str) -> list[bool]:
    depth, mask = 0, []
    for ch in text:
        if ch in _OPEN:
            depth += 1
        mask.append(depth > 0)
        if ch in _CLOSE and depth > 0:
            depth -= 1
    return mask


def find_places(text: str, gaz: Gazetteer) -> list[Match]:
    """Every gazetteer place named in ``text`` (streets excluded), in order of appearance."""
    if not isinstance(text, str) or not text.strip():
        return []
    mask = _paren_mask(text)
    matches: list[Match] = []
    # Latin words with their character spans; apostrophes inside words are dropped (Xi'an -> xian).
    folded = re.sub(r"(?<=\w)['’`](?=\w)", "", text)
    offsets = [i for i, ch in enumerate(text) if not (ch in "'’`" and 0 < i < len(text) - 1
                                                     and text[i - 1].isalnum() and text[i + 1].isalnum())]
    words = [(m.group(0).lower(), offsets[m.start()]) for m in re.finditer(r"[A-Za-z0-9]+", folded)]
    tokens = [latin_key(w) for w, _ in words]
    for i in range(len(tokens)):
        for n in (1, 2, 3):
            if i + n > len(tokens):
                break
            key = "".join(tokens[i:i + n])
            if key not in gaz.latin:
                continue
            j = i + n
            while j < len(tokens) and tokens[j] in gaz.direction_words:
                j += 1
            if j < len(tokens) and tokens[j] in gaz.street_words:
                continue
            for place in gaz.latin[key]:
                matches.append(Match(place, " ".join(w for w, _ in words[i:i + n]), mask[words[i][1]]))
    # Chinese names: substring search, only where the text has Chinese characters at all.
    chinese_keys = [k for k in gaz.chinese if k in text] if _CJK.search(text) else []
    for key in chinese_keys:
        places = gaz.chinese[key]
        for m in re.finditer(re.escape(key), text):
            after = text[m.end():m.end() + 2]
            if any(after.startswith(w) for w in gaz.street_words if _CJK.search(w)):
                continue
            for place in places:
                matches.append(Match(place, key, mask[m.start()]))
    return matches


@dataclass(frozen=True)
class FieldResult:
    field: str
    provinces: tuple  # candidate provinces at the best level (sorted, HK last)
    level: str | None
    names: tuple[str, ...]

    @property
    def decided(self):
        return self.provinces[0] if len(self.provinces) == 1 else None


def _sort_key(p):
    return (1, 0) if p == HK else (0, p)


def resolve_field(field_name: str, text: str, gaz: Gazetteer) -> FieldResult:
    """Candidates in one field at the best level present (county names only in addresses or parentheses)."""
    matches = [m for m in find_places(text, gaz)
               if m.place.level != "county" or field_name == "address" or m.in_parentheses]
    if not matches:
        return FieldResult(field_name, (), None, ())
    best = max(LEVELS[m.place.level] for m in matches)
    top = [m for m in matches if LEVELS[m.place.level] == best]
    level = next(k for k, v in LEVELS.items() if v == best)
    provinces = tuple(sorted({m.place.province for m in top}, key=_sort_key))
    names = tuple(sorted({f"{m.text}->{m.place.name}({m.place.code})" for m in top}))
    return FieldResult(field_name, provinces, level, names)


def geocode_entity(values: dict[str, str], country: str, gaz: Gazetteer,
                   fields=("address", "entity_name", "city"), transcribed=None, table=None) -> dict:
    """Apply the rule to one entry; ``values`` maps field name -> text. Returns the geocode columns.

    ``geo_province_code`` (int or None), ``geo_hong_kong`` (bool), ``geo_status``, ``geo_basis`` (the deciding
    field, ``country``, ``transcription``, ``name_table`` or empty) and ``geo_detail`` (what each field matched,
    for the audit trail).

    Two hints, used only where the fields do not decide (each a province code or :data:`HK`, or None):

    - ``transcribed``: the transcription's own province (``province_en``). It settles an AMBIGUOUS entry when it
      is one of the candidates in every field that named a place (``Suzhou`` + Jiangsu -> Jiangsu); it never
      places an entry with no place at all, and never overrides a field that decides.
    - ``table``: the hand-checked name -> province table (``configs/entity_locations.yaml``). It places an
      unresolved entry, or an ambiguous one when it is among every field's candidates (else ``conflict``); if a
      field decides a different province, the entry is a ``conflict`` (the table and the rule disagree).
    """
    results = [resolve_field(f, values.get(f, ""), gaz) for f in fields]
    detail = "; ".join(f"{r.field}: {r.level} " + ", ".join(r.names) for r in results if r.provinces)
    decided = next((r for r in results if r.decided is not None), None)
    country = (country or "").strip().upper()
    candidates = [set(r.provinces) for r in results if r.provinces]

    def out(status, province=None, basis="", note=""):
        text = "; ".join(x for x in (detail, note) if x)
        return {"geo_province_code": province if isinstance(province, int) else None,
                "geo_hong_kong": province == HK, "geo_status": status, "geo_basis": basis, "geo_detail": text}

    def country_agrees(choice) -> bool:
        return not ((country == "HK") != (choice == HK) and country in ("HK", "CN"))

    def placed(choice, basis, note=""):
        if not country_agrees(choice):
            return out("conflict", note=note)
        return out("hong_kong" if choice == HK else "province", choice, basis, note)

    table_note = f"name_table: {table}" if table is not None else ""
    if decided is None:
        if candidates:
            if transcribed is not None and all(transcribed in c for c in candidates):
                return placed(transcribed, "transcription", f"transcription: {transcribed}")
            if table is not None:
                if all(table in c for c in candidates):
                    return placed(table, "name_table", table_note)
                return out("conflict", note=table_note)
            return out("ambiguous")
        if table is not None:
            return placed(table, "name_table", table_note)
        if country == "HK":
            return out("hong_kong", HK, "country")
        return out("unresolved")
    choice = decided.decided
    for r in results:
        if r.provinces and choice not in r.provinces:
            return out("conflict")
        if r.decided is not None and r.decided != choice:
            return out("conflict")
    if table is not None and table != choice:
        return out("conflict", note=table_note)
    return placed(choice, decided.field)
