"""The rows of bench.generate, made in memory from one seeded random stream (no database here).

``Synth`` makes one customer at a time with everything around it (contacts, the phone index,
subscriptions, billing accounts and months, interactions) over the places of bench._world.
Every random draw comes from the one ``random.Random`` in customer order, so a seed gives the
same rows whatever the batch size. Draws use ``random()`` directly: ``randint``/``choice`` cost
several times more, and the full scale makes some 100 million of them.
"""
import bisect
import datetime as dt
import itertools
from dataclasses import dataclass, field

from . import _data as D
from ._world import credit_code

TZ = "+08:00"  # the product's time zone (Asia/Shanghai); timestamps are written as text
CN_NUMBERS = "一二三四五六七八九十"
UNIVERSITY_WORDS = ["理工", "师范", "医科", "财经", "科技", "农业", "工业", "交通", "外国语", "传媒"]


# --- Customers ------------------------------------------------------------------------------

@dataclass
class Made:
    """One customer and everything around it, as COPY rows (ids filled in)."""
    customer: tuple
    contacts: list = field(default_factory=list)
    phones: list = field(default_factory=list)
    accounts: list = field(default_factory=list)
    subscriptions: list = field(default_factory=list)
    records: list = field(default_factory=list)
    interactions: list = field(default_factory=list)


CUSTOMER_COLUMNS = ("id", "external_id", "kind", "name", "credit_code", "industry", "size", "grade", "status",
                    "org_unit_id", "account_manager_id", "is_national_key_account", "is_potential_key_account",
                    "is_group", "group_id", "phone", "address", "credit_rating", "credit_limit", "satisfaction",
                    "created_at", "updated_at")
CONTACT_COLUMNS = ("id", "customer_id", "name", "role", "phones", "email", "is_primary")
PHONE_COLUMNS = ("id", "customer_id", "contact_id", "digits", "reversed_digits")
ACCOUNT_COLUMNS = ("id", "customer_id", "number", "name", "is_active")
SUBSCRIPTION_COLUMNS = ("id", "customer_id", "product_id", "quantity", "monthly_fee", "start_date", "end_date")
RECORD_COLUMNS = ("id", "account_id", "customer_id", "month", "revenue", "usage", "arrears", "discount")
INTERACTION_COLUMNS = ("id", "customer_id", "contact_id", "channel", "occurred_at", "subject", "notes",
                       "satisfaction", "recorded_by_id")

KINDS = [("enterprise", 60), ("government", 8), ("institution", 10), ("individual", 22)]
SIZES = {"enterprise": [("micro", 35), ("small", 35), ("medium", 20), ("large", 10)],
         "government": [("medium", 60), ("large", 40)], "institution": [("small", 20), ("medium", 55), ("large", 25)]}
STATUSES = [("active", 72), ("prospect", 10), ("abnormal", 6), ("churned", 12)]
CREDIT = [("AAA", 10), ("AA", 25), ("A", 35), ("B", 20), ("C", 10)]
SUBSCRIPTION_COUNT = {"micro": (1, 2), "small": (1, 3), "medium": (2, 4), "large": (3, 6), "": (1, 2)}
QUANTITY_SHARE = {"micro": 0.02, "small": 0.08, "medium": 0.3, "large": 1.0, "": 0.0}
CREDIT_LIMIT = {"micro": 20_000, "small": 100_000, "medium": 500_000, "large": 3_000_000}
INTERACTIONS = {"active": (0, 5), "abnormal": (1, 5), "prospect": (1, 2), "churned": (0, 2)}
PHONE_SEPARATORS = (", ", "，", "; ", " / ")
FULL_WIDTH = {ord(str(i)): chr(ord("０") + i) for i in range(10)}
BIG_TICKET = {"dl-1g", "dl-cross-border", "ict-campus", "ict-5g-private", "cloud-dr", "cloud-idc"}
INDIVIDUAL_PRODUCTS = {"mob-5g-199", "mob-5g-129", "bb-300m", "bb-fttr", "voice-fixed"}


def weighted(pairs):
    values, weights = zip(*pairs)
    return list(values), list(itertools.accumulate(weights))


def month_starts(until, months):
    """The first days of the ``months`` months ending with ``until``'s month, oldest first."""
    year, month = until.year, until.month
    out = []
    for _ in range(months):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


class Synth:
    """Makes customers one by one; ``ids`` hands out the next id per table."""

    def __init__(self, rng, places, people, products, grading, until, months, ids):
        self.rng, self.places, self.ids, self.grading = rng, places, ids, grading
        self.products = products  # [(id, code, category, price, (lo, hi), gb)]
        self.months = month_starts(until, months)
        self.month_text = [m.isoformat() for m in self.months]
        self.month_ord = [m.toordinal() for m in self.months]
        self.now = dt.datetime.combine(self.months[-1] + dt.timedelta(days=32), dt.time()).replace(day=1)
        self.now_ord = self.now.date().toordinal()
        self.managers = {}
        self.province_managers = {}
        for person in people:
            if person.role == "account_manager":
                self.managers.setdefault(person.unit.id, []).append(person.id)
            elif person.role == "provincial_manager":
                self.province_managers[person.unit.id] = person.id
        self.kinds = weighted(KINDS)
        self.sizes = {kind: weighted(pairs) for kind, pairs in SIZES.items()}
        self.statuses = weighted(STATUSES)
        self.credit = weighted(CREDIT)
        self.industries = weighted(D.ENTERPRISE_INDUSTRIES)
        self.suffixes = weighted(D.COMPANY_SUFFIXES)
        self.channels = weighted(D.CHANNEL_WEIGHTS)
        self.surnames = (D.SURNAMES, list(itertools.accumulate(D.SURNAME_WEIGHTS)))
        self.contact_counts = weighted([(1, 10), (2, 15), (3, 25), (4, 25), (5, 15), (6, 10)])
        self.satisfaction = weighted([(1, 3), (2, 5), (3, 15), (4, 40), (5, 37)])
        self.r = rng.random
        self._days = []
        self.org_products = list(products)
        self.small_products = [p for p in products if p[1] not in BIG_TICKET]
        self.individual_products = [p for p in products if p[1] in INDIVIDUAL_PRODUCTS] or self.small_products

    def pick(self, table):
        values, cumulative = table
        return values[bisect.bisect_left(cumulative, self.r() * cumulative[-1])]

    def one(self, seq):
        return seq[int(self.r() * len(seq))]

    def between(self, low, high):
        """An int in [low, high], like randint but a few times cheaper."""
        return low + int(self.r() * (high - low + 1))

    # --- text -----------------------------------------------------------------------------

    def timestamp(self, days_ago):
        """A moment on the day ``days_ago`` days before the day before ``now``."""
        seconds = int(self.r() * 86_400)
        return f"{self.day_text(days_ago + 1)} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{TZ}"

    def day_text(self, days_ago):
        cache = self._days
        if days_ago >= len(cache):
            cache.extend(dt.date.fromordinal(self.now_ord - d).isoformat() for d in range(len(cache), days_ago + 366))
        return cache[days_ago]

    def city_name(self, unit):
        return (unit.city or unit).name.split(" (")[0]

    def company_name(self, unit, industry):
        words = D.INDUSTRY_WORDS.get(industry) or ["科技"]
        return f"{D.short_place(self.city_name(unit))}{self.one(D.BRANDS)}{self.one(words)}{self.pick(self.suffixes)}"

    def government_name(self, unit):
        city = self.city_name(unit)
        if unit.district is not None:
            place = city + unit.district.name if unit.district.name != city else city
        elif self.r() < 0.3:
            place = f"{city}{self.one(D.DISTRICT_WORDS)}区"
        else:
            place = city
        return place + self.one(D.BUREAUS)

    def institution_name(self, unit):
        template, industry = self.one(D.INSTITUTIONS)
        name = template.format(n=self.one(CN_NUMBERS), w=self.one(UNIVERSITY_WORDS))
        return self.city_name(unit) + name, industry

    def address(self, unit):
        province, city = unit.province.name.split(" (")[0], self.city_name(unit)
        district = unit.district.name if unit.district is not None else f"{self.one(D.DISTRICT_WORDS)}区"
        head = city if city == province else province + city
        return f"{head}{district}{self.one(D.ROADS)}{self.between(1, 999)}号"

    # --- phones: (as typed, national digits as key_accounts.phones.normalize gives them) ----

    def mobile(self):
        r = self.r
        number = f"{self.one(D.MOBILE_PREFIXES)}{int(r() * 100_000_000):08d}"
        style = r()
        if style < 0.45:
            return number, number
        if style < 0.65:
            text = f"{number[:3]} {number[3:7]} {number[7:]}"
        elif style < 0.75:
            text = f"{number[:3]}-{number[3:7]}-{number[7:]}"
        elif style < 0.85:
            text = f"+86 {number[:3]} {number[3:7]} {number[7:]}"
        elif style < 0.91:
            text = f"+86-{number}"
        elif style < 0.95:
            text = f"0086 {number}"
        elif style < 0.98:
            text = f"86{number}"
        else:
            text = number.translate(FULL_WIDTH)  # pasted from a Chinese document
        return text, number

    def landline(self, unit):
        r = self.r
        area = unit.area_code
        local = f"{2 + int(r() * 7)}{int(r() * 10_000_000):07d}"
        style = r()
        if style < 0.4:
            text = f"{area}-{local}"
        elif style < 0.55:
            text = f"({area}) {local[:4]} {local[4:]}"
        elif style < 0.7:
            text = f"{area} {local[:4]} {local[4:]}"
        elif style < 0.8:
            text = f"{area}{local}"
        elif style < 0.9:
            text = f"+86 {area[1:]} {local[:4]} {local[4:]}"
        elif r() < 0.6:
            text = f"{area}-{local} 转 {self.between(100, 8999)}"
        else:
            text = f"{area}-{local} ext. {self.between(10, 999)}"
        return text, area + local

    # --- one customer -------------------------------------------------------------------

    def customer(self, *, unit=None, kind=None, name=None, industry=None, is_group=False, group_id=None,
                 national=False, size=None, status=None, manager=None):
        """Make one customer (and its contacts, phones, subscriptions, billing, interactions)."""
        r, ids = self.r, self.ids
        unit = unit or self.places.pick_leaf(self.rng)
        kind = kind or self.pick(self.kinds)
        if kind == "individual":
            surname, given, _s, _g = self.person()
            name, industry, size = surname + given, "", ""
        elif kind == "government":
            name, industry = name or self.government_name(unit), "S"
        elif kind == "institution":
            made_name, made_industry = self.institution_name(unit)
            name, industry = name or made_name, industry or made_industry
        else:
            industry = industry or self.pick(self.industries)
            name = name or self.company_name(unit, industry)
        size = size if size is not None else (self.pick(self.sizes[kind]) if kind != "individual" else "")
        status = status or self.pick(self.statuses)
        pk = ids.next("customer")
        if kind == "individual":
            code = None
        else:
            authority = {"enterprise": "92" if size == "micro" and r() < 0.3 else "91",
                         "government": "11", "institution": "12"}[kind]
            code = credit_code(authority, unit.division, pk)
        if manager is None:
            managers = self.managers.get(unit.id)
            if managers and (status != "prospect" or r() < 0.7):
                manager = self.one(managers)
            elif not unit.leaf:
                manager = self.province_managers.get(unit.id)
        made = Made(customer=None)
        main_phone, digits = self.mobile() if kind == "individual" else self.landline(unit)
        made.phones.append((ids.next("phone"), pk, None, digits, digits[::-1]))
        self._contacts(made, pk, unit, kind)
        revenue, products, first_start = self._subscriptions_and_billing(made, pk, name, kind, size, status)
        self._interactions(made, pk, status, manager)

        grade = self._grade(revenue, products)
        created_days = self.now_ord - first_start + self.between(1, 90) if first_start else self.between(5, 720)
        updated_days = self.between(0, min(created_days, 120))
        potential = status in ("prospect", "active") and grade in ("B", "C") and size in ("medium", "large") and r() < 0.35
        credit = self.pick(self.credit) if status != "abnormal" else self.one(("B", "C"))
        limit = float(round(CREDIT_LIMIT[size] * (0.2 + r()), -3)) if size in CREDIT_LIMIT else None
        satisfaction = round(min(5.0, max(1.0, self.rng.gauss(4.1, 0.6))), 2) if r() < 0.6 else None
        made.customer = (
            pk, f"CRM{pk:010d}", kind, name, code, industry, size, grade, status, unit.id, manager, national,
            potential, is_group, group_id, main_phone, self.address(unit), credit, limit, satisfaction,
            self.timestamp(created_days), self.timestamp(updated_days),
        )
        return made

    def person(self):
        """(surname, given name, their pinyin)."""
        surname, surname_py = self.pick(self.surnames)
        if self.r() < 0.7:
            (a, a_py), (b, b_py) = self.one(D.GIVEN_CHARS), self.one(D.GIVEN_CHARS)
            return surname, a + b, surname_py, a_py + b_py
        a, a_py = self.one(D.GIVEN_CHARS)
        return surname, a, surname_py, a_py

    def _grade(self, revenue, products):
        for grade, minimum, count in self.grading:
            if revenue >= minimum and products >= count:
                return grade
        return "C"

    def _contacts(self, made, pk, unit, kind):
        r, ids = self.r, self.ids
        if kind == "individual":
            count, roles = (2 if r() < 0.1 else 1), D.INDIVIDUAL_ROLES
        else:
            count = self.pick(self.contact_counts)
            roles = {"government": D.GOV_ROLES, "institution": D.INSTITUTION_ROLES}.get(kind, D.ORG_ROLES)
        for n in range(count):
            surname, given, surname_py, given_py = self.person()
            numbers = []
            style = r()
            if style < 0.9:
                numbers.append(self.mobile())
            if style >= 0.9 or r() < 0.4:
                numbers.append(self.landline(unit))
            text = self.one(PHONE_SEPARATORS).join(number for number, _digits in numbers)
            email = f"{given_py}.{surname_py}{self.between(1, 999)}@{self.one(D.MAIL_DOMAINS)}" if r() < 0.7 else ""
            role = roles[0] if kind == "individual" and n == 0 else self.one(roles)
            contact_id = ids.next("contact")
            made.contacts.append((contact_id, pk, surname + given, role, text, email, n == 0))
            seen = None
            for _text, digits in numbers:
                if digits != seen:  # digits_of keeps distinct numbers only
                    made.phones.append((ids.next("phone"), pk, contact_id, digits, digits[::-1]))
                    seen = digits

    def _subscriptions_and_billing(self, made, pk, name, kind, size, status):
        """Subscriptions, billing accounts and their monthly records; returns (average monthly
        revenue over the months billed, distinct products still subscribed, first start ordinal)."""
        r, ids = self.r, self.ids
        if status == "prospect":
            return 0.0, 0, None
        low, high = SUBSCRIPTION_COUNT[size]
        pool = (self.individual_products if kind == "individual"
                else self.org_products if size in ("medium", "large") else self.small_products)
        chosen = self.rng.sample(pool, min(len(pool), self.between(low, high)))
        share = QUANTITY_SHARE[size]
        now_ord = self.now_ord
        churn_ord = now_ord - self.between(20, 330) if status == "churned" else None
        n_accounts = 2 if size == "large" and len(chosen) > 2 else 1
        accounts = []
        for n in range(n_accounts):
            account_id = ids.next("account")
            label = name if n == 0 else f"{name}（{n + 1}）"
            made.accounts.append((account_id, pk, f"{pk % 1000:03d}{account_id:013d}", label, status != "churned"))
            accounts.append((account_id, []))
        first_start, products = None, set()
        for index, (product_id, _code, _category, price, (lo, hi), gb) in enumerate(chosen):
            quantity = lo if share == 0 else lo + int((hi - lo) * share * r())
            fee = round(price * quantity * (0.6 + 0.4 * r()), 2)
            start_ord = now_ord - self.between(60, 6 * 365)
            if churn_ord is not None:
                start_ord = min(start_ord, churn_ord - 30)
                end_ord = churn_ord
            elif r() < 0.08:
                end_ord = self.between(start_ord + 30, now_ord - 1)
            else:
                end_ord = None
                products.add(product_id)
            first_start = start_ord if first_start is None else min(first_start, start_ord)
            made.subscriptions.append((ids.next("subscription"), pk, product_id, quantity, fee,
                                       self.day_text(now_ord - start_ord),
                                       self.day_text(now_ord - end_ord) if end_ord else None))
            accounts[index % n_accounts][1].append((start_ord, end_ord or 10**9, fee, quantity * gb))
        total, billed = 0.0, 0
        last = len(self.months)
        abnormal_from = last - self.between(1, 4) if status == "abnormal" else last
        records, month_ord, month_text = made.records, self.month_ord, self.month_text
        for account_id, subs in accounts:
            for m in range(last):
                first_day = month_ord[m]
                last_day = first_day + 27
                base = usage = 0.0
                for start_ord, end_ord, fee, gb in subs:
                    if start_ord <= last_day and end_ord >= first_day:
                        base += fee
                        usage += gb
                if base == 0:
                    continue
                revenue = int(base * (92 + 20 * r())) / 100
                discount = int(revenue * 15 * r()) / 100 if r() < 0.3 else 0
                if m >= abnormal_from:
                    arrears = int(revenue * (50 + 50 * r())) / 100
                elif r() < 0.02:
                    arrears = int(revenue * 30 * r()) / 100
                else:
                    arrears = 0
                records.append((ids.next("record"), account_id, pk, month_text[m], revenue,
                                int(usage * (70 + 60 * r())) / 100, arrears, discount))
                total += revenue
                billed += 1
        return (total * n_accounts / billed if billed else 0.0), len(products), first_start

    def _interactions(self, made, pk, status, manager):
        r, ids = self.r, self.ids
        low, high = INTERACTIONS[status]
        for _ in range(self.between(low, high)):
            channel = self.pick(self.channels)
            contact = self.one(made.contacts)[0] if made.contacts and r() < 0.8 else None
            satisfaction = self.pick(self.satisfaction) if r() < 0.4 else None
            recorded_by = manager if channel in ("field_visit", "business_hall") else None
            made.interactions.append((
                ids.next("interaction"), pk, contact, channel, self.timestamp(self.between(0, 364)),
                self.one(D.SUBJECTS[channel]), self.one(D.NOTES), satisfaction, recorded_by,
            ))
