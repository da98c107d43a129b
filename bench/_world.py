"""The tenant as bench.generate sees it: its org tree (places for names, phones and credit codes)
and the people it adds (HQ analysts, provincial managers, account managers).

Units come in as plain tuples; nothing here touches the database. Nothing may depend on
``hash()`` of a string (randomised per process) or on set order: a seed must give the same rows.
"""
import bisect
import itertools
import zlib
from dataclasses import dataclass

from key_accounts.validators import credit_code_check_char

from . import _data as D

GB11714_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def gb11714_check(code8):
    """Check character of a 9-character organisation code (GB 11714), digits only here."""
    value = 11 - sum(int(char) * weight for char, weight in zip(code8, GB11714_WEIGHTS)) % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def credit_code(authority, division, number):
    """A valid unified social credit code: registering authority + category, the 6-digit
    division, a 9-character organisation code made from ``number`` (unique for unique numbers
    below 10^8) and the GB 32100 check character."""
    org8 = f"{(number * 7919 + 20_240_101) % 100_000_000:08d}"  # 7919 is prime to 10^8: a bijection
    first17 = f"{authority}{division}{org8}{gb11714_check(org8)}"
    return first17 + credit_code_check_char(first17)


def crc(text):
    return zlib.crc32(text.encode())


# --- The tree ---------------------------------------------------------------------------------

@dataclass
class Unit:
    id: int
    code: str
    name: str
    path: str
    depth: int
    parent_id: int
    leaf: bool
    province: "Unit" = None
    city: "Unit" = None
    district: "Unit" = None
    division: str = "110100"
    area_code: str = "010"
    weight: float = 1.0


def _gb(code, digits):
    return code.isdigit() and len(code) == digits


class Places:
    """Owners and place names from the org tree. Division codes (2/4/6 digits, as in the demo
    tree and the bench tree) make provinces, cities and districts; other codes fall back to the
    unit's position (children of a root are provinces, their leaves cities)."""

    def __init__(self, rows):
        # rows: (id, code, name, path, depth, parent_id, numchild), any order
        self.units = [Unit(i, c, n, p, d, par, numchild == 0) for i, c, n, p, d, par, numchild in sorted(rows, key=lambda r: r[3])]
        if not self.units:
            raise ValueError("the tenant has no org units: load an org tree first (kam org import ... --create-levels)")
        by_id = {u.id: u for u in self.units}
        for unit in self.units:
            chain = [unit]
            while chain[-1].parent_id is not None and chain[-1].parent_id in by_id:
                chain.append(by_id[chain[-1].parent_id])
            chain.reverse()  # root first
            unit.province = next((u for u in chain if _gb(u.code, 2)), chain[1] if len(chain) > 1 else chain[0])
            unit.city = next((u for u in chain if _gb(u.code, 4)), unit if unit.depth > unit.province.depth else None)
            unit.district = unit if _gb(unit.code, 6) else None
            numeric = next((u.code for u in reversed(chain) if u.code.isdigit() and len(u.code) in (2, 4, 6)), None)
            unit.division = numeric.ljust(6, "0") if numeric else f"{110100 + crc(unit.code) % 500_000:06d}"
            unit.area_code = self._area_code(unit)
        self.root = self.units[0]
        leaves = [u for u in self.units if u.leaf and u.depth > 1] or [self.root]
        for unit in leaves:  # capitals and big cities get more customers; the rest vary by up to 3x
            city_code = unit.city.code if unit.city else unit.code
            unit.weight = (3.0 if city_code.endswith("01") else 1.0) * (0.5 + (crc(unit.code) % 1000) / 666)
        self.leaves = leaves
        self.cumulative = list(itertools.accumulate(u.weight for u in leaves))
        self.provinces = []
        for unit in self.units:
            if unit.province is unit and unit is not self.root and unit not in self.provinces:
                self.provinces.append(unit)
        self.provinces = self.provinces or [self.root]
        self.leaves_by_province = {p.id: [u for u in leaves if u.province is p] for p in self.provinces}

    @staticmethod
    def _area_code(unit):
        city_code = unit.city.code if unit.city else unit.code
        if city_code in D.AREA_CODES:
            return D.AREA_CODES[city_code]
        first = D.AREA_FIRST_DIGIT.get(unit.province.code, "5")
        return f"0{first}{10 + crc(city_code) % 90}"

    def pick_leaf(self, rng):
        return self.leaves[bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])]

    def expected_share(self, unit):
        return unit.weight / self.cumulative[-1]


# --- People -----------------------------------------------------------------------------------

def person_name(rng):
    """(surname, given, surname pinyin, given pinyin)."""
    surname, surname_py = rng.choices(D.SURNAMES, D.SURNAME_WEIGHTS)[0]
    chars = rng.sample(D.GIVEN_CHARS, 2) if rng.random() < 0.7 else [rng.choice(D.GIVEN_CHARS)]
    return surname, "".join(c for c, _ in chars), surname_py, "".join(p for _, p in chars)


@dataclass
class Person:
    """A user the generator makes: ``role`` at ``unit``."""
    username: str
    role: str
    unit: Unit
    surname: str
    given: str
    id: int = None


def plan_people(places, customers, rng, domain, per_manager):
    """HQ analysts at the root, a provincial manager per province and account managers at every
    leaf unit (one per ``per_manager`` expected customers)."""
    people = []

    def add(prefix, role, unit, n):
        surname, given, _s, _g = person_name(rng)
        people.append(Person(f"{prefix}.{unit.code.lower()}.{n}@{domain}", role, unit, surname, given))

    for n in (1, 2):
        add("hq", "hq_analyst", places.root, n)
    if places.provinces != [places.root]:
        for province in places.provinces:
            add("pm", "provincial_manager", province, 1)
    for leaf in places.leaves:
        for n in range(1, max(1, round(customers * places.expected_share(leaf) / per_manager)) + 1):
            add("am", "account_manager", leaf, n)
    return people
