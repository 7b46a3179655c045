"""The demo SACCO behind `flask --app wsgi seed-demo`: Kenyan members, four loan products, loans in
every status with their schedules and repayments, and monthly deposits and share capital.

Deterministic: the same seed and anchor date give the same rows. Fast: rows are built in Python with
their ids assigned up front (children name their parents without round trips) and written with
SQLAlchemy Core bulk inserts, in one transaction. Schedules come from `amortization.build_schedule`
and repayments are split by `repayments.allocate`, so the demo obeys the same arithmetic as the
services; but no outbox events or per-row audit entries are written (one `demo.seeded` entry is).
"""

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from random import Random

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, insert, select, text

from app import clock
from app.extensions import db
from app.models import (
    Contribution,
    ContributionKind,
    InstallmentStatus,
    InterestMethod,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanStatus,
    Member,
    MemberStatus,
    PaymentMethod,
    Repayment,
)
from app.models.sacco import phone_sha256
from app.services import audit
from app.services.actor import Actor
from app.services.amortization import build_schedule, to_cents
from app.services.errors import ValidationFailed
from app.services.members import member_number_for, search_key
from app.services.repayments import allocate

CHUNK = 10_000  # rows per INSERT ... executemany
MEMBER_BATCH = 2_000  # members built in memory before their rows are written
ZERO = Decimal("0.00")
SHILLING = Decimal("1")
HUNDRED = Decimal(100)
DEPOSIT_MONTHS = 12  # how far back an active member's monthly deposits go

# --- Names -----------------------------------------------------------------------------------
# (female first names, male first names, surnames) per community.
_COMMUNITIES = {
    "kikuyu": (
        "Wanjiku Wambui Njeri Nyambura Wairimu Wanjiru Muthoni Wangari Waithera Nyokabi Wangui "
        "Njoki Wamaitha Gathoni Wacera",
        "Kamau Njoroge Mwangi Kariuki Kimani Githinji Maina Ndungu Gitau Macharia Waweru Kinyua "
        "Muriuki Ngugi Kiarie",
        "Kamau Mwangi Njoroge Kariuki Kimani Ndungu Wainaina Githinji Maina Macharia Gitau Waweru "
        "Mburu Ngugi Kiarie Muchiri Kinyanjui Njuguna Karanja Muigai Nganga Kahiga Wachira Gichuki",
    ),
    "luo": (
        "Achieng Akinyi Atieno Adhiambo Awino Anyango Apiyo Akoth Auma Amondi Aoko Akello",
        "Otieno Odhiambo Ochieng Onyango Omondi Owino Okoth Ouma Oduor Otiende Okello Opiyo",
        "Otieno Odhiambo Ochieng Onyango Omondi Owino Okoth Ouma Oduor Obiero Ogola Oloo Okumu "
        "Odera Agola Ogutu Adongo Were Oyugi Ojwang",
    ),
    "luhya": (
        "Nafula Nasimiyu Nekesa Naliaka Nanjala Namalwa Nabwire Khavetsa Mideva Kageha",
        "Wafula Wanyama Barasa Wekesa Simiyu Wanjala Makokha Masinde Khaemba Shikuku Mukhwana",
        "Wafula Wanyama Barasa Wekesa Simiyu Wanjala Makokha Masinde Khaemba Shikuku Mukhwana "
        "Namwamba Mulama Amukoye Okwemba Lusweti Wangila Wamalwa",
    ),
    "kalenjin": (
        "Chepkoech Jepkosgei Chelangat Chepngetich Jeptoo Chemutai Jerotich Cherono Chebet "
        "Jepchirchir Chepkemoi",
        "Kipchoge Kiprono Kipkemboi Kibet Kiptoo Kipruto Cheruiyot Kipkorir Kiplagat Kemboi Rotich",
        "Kiprotich Rotich Kemboi Cheruiyot Kirui Langat Koech Mutai Ruto Sang Kosgei Tanui Bett "
        "Kiplagat Chirchir Korir Ngetich Keter",
    ),
    "kamba": (
        "Mwende Mumbua Ndinda Mutheu Kalekye Syombua Mwikali Nduku Ndunge Kavata",
        "Mutua Musyoka Mutinda Kioko Mwanzia Muthama Kilonzo Nzioka Wambua Musau Kyalo",
        "Mutua Musyoka Mutinda Kioko Kilonzo Nzioka Wambua Musau Kyalo Mwendwa Muli Ndambuki "
        "Mulwa Kimeu Maundu Kitheka",
    ),
    "kisii": (
        "Kemunto Moraa Kwamboka Nyaboke Bosibori Kerubo Nyanchama Bochaberi Mokeira Nyamoita",
        "Ombati Nyangau Momanyi Ogeto Onchiri Nyakundi Mogaka Onsongo Makori Ondieki",
        "Ombati Nyangau Momanyi Ogeto Onchiri Nyakundi Mogaka Onsongo Makori Ondieki Omwenga "
        "Nyamweya Obure Mokaya Osoro Matara",
    ),
    "meru": (
        "Kendi Nkatha Karimi Makena Kagwiria Gakii Nkirote Kananu Mukami Kathure",
        "Mutwiri Murithi Gitonga Kirimi Mugambi Kimathi Mwiti Kaberia Munene Koome",
        "Mutwiri Murithi Gitonga Kirimi Mugambi Kimathi Mwiti Kaberia Koome Mbaabu Kinoti "
        "Muriungi Kiogora Mutembei Gikunda Nkanata",
    ),
    "coastal": (
        "Fatuma Mwanaisha Zainabu Amina Rehema Halima Saida Mwanajuma Khadija Zawadi Subira "
        "Mariamu",
        "Hassan Omar Juma Bakari Salim Rashid Hamisi Athumani Said Mohamed Abdalla Kazungu",
        "Hassan Omar Bakari Salim Rashid Hamisi Athumani Said Mohamed Abdalla Kazungu Baya Katana "
        "Kahindi Mwamburi Chengo Charo Karisa Mwadime",
    ),
}
_COMMUNITY_WEIGHTS = {
    "kikuyu": 22,
    "luhya": 16,
    "kalenjin": 14,
    "luo": 12,
    "kamba": 11,
    "kisii": 7,
    "meru": 7,
    "coastal": 8,
}
# Given names that people of every community carry.
_GIVEN_FEMALE = (
    "Mary Grace Faith Mercy Esther Jane Ann Lucy Caroline Joyce Beatrice Catherine Elizabeth "
    "Margaret Rose Sarah Purity Winnie Lilian Eunice Nancy Irene Susan Dorcas"
)
_GIVEN_MALE = (
    "John Peter James Joseph David Daniel Samuel Stephen Paul Michael Francis George Charles "
    "Patrick Dennis Kennedy Brian Collins Felix Geoffrey Vincent Wilson Moses Isaac"
)
_EMAIL_DOMAINS = ("gmail.com",) * 7 + ("yahoo.com", "outlook.com", "hotmail.com")
# Mobile prefixes after 254 that Kenyan networks use (Safaricom, Airtel, Telkom).
_MOBILE_PREFIXES = (
    tuple(range(700, 730))
    + tuple(range(740, 749))
    + (757, 758, 759, 768, 769)
    + tuple(range(790, 800))
    + tuple(range(730, 740))
    + tuple(range(750, 757))
    + (762,)
    + tuple(range(780, 790))
    + (770, 771, 772)
)
_NEW_PREFIXES = (100, 101, 102, 110, 111, 112, 113, 114, 115)  # the 2541... range


# --- Loan products ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductSpec:
    name: str
    interest_rate: str
    interest_method: str
    min_amount: int
    max_amount: int
    min_term_months: int
    max_term_months: int
    processing_fee_rate: str
    weight: int
    amounts: tuple[int, ...]  # typical amounts applied for, most common first
    terms: tuple[int, ...]
    purposes: tuple[str, ...]


PRODUCTS = (
    ProductSpec(
        "Development loan",
        "12",
        InterestMethod.REDUCING_BALANCE,
        10_000,
        2_000_000,
        3,
        36,
        "1",
        35,
        (
            100_000,
            50_000,
            200_000,
            150_000,
            300_000,
            80_000,
            500_000,
            30_000,
            750_000,
            1_000_000,
            1_500_000,
        ),
        (12, 24, 36, 18, 6, 3),
        (
            "Building a rental unit",
            "Buying a plot",
            "Dairy cows",
            "Roofing the house",
            "Water tank and gutters",
            "Matatu deposit",
            "Greenhouse",
            "Solar installation",
        ),
    ),
    ProductSpec(
        "Emergency loan",
        "15",
        InterestMethod.FLAT,
        1_000,
        100_000,
        1,
        12,
        "2",
        25,
        (10_000, 5_000, 20_000, 15_000, 30_000, 3_000, 50_000, 2_000, 80_000),
        (3, 6, 1, 2, 4, 12, 9),
        (
            "Hospital bill",
            "Funeral expenses",
            "Car repair",
            "Rent arrears",
            "Family emergency",
            "Medical treatment",
        ),
    ),
    ProductSpec(
        "School fees loan",
        "10",
        InterestMethod.REDUCING_BALANCE,
        5_000,
        300_000,
        1,
        12,
        "1",
        20,
        (30_000, 50_000, 20_000, 80_000, 100_000, 15_000, 150_000, 10_000),
        (6, 12, 4, 3, 8, 9),
        (
            "Secondary school fees",
            "University fees",
            "College fees",
            "Boarding fees",
            "Primary school fees and uniform",
        ),
    ),
    ProductSpec(
        "Biashara loan",
        "14",
        InterestMethod.FLAT,
        10_000,
        500_000,
        6,
        24,
        "1.5",
        20,
        (50_000, 100_000, 30_000, 150_000, 200_000, 20_000, 300_000, 400_000),
        (12, 6, 18, 24, 9),
        (
            "Shop stock",
            "Boda boda",
            "Posho mill",
            "Salon equipment",
            "Mitumba stock",
            "Kibanda expansion",
            "Poultry unit",
        ),
    ),
)

_DECLINE_REASONS = (
    "Guarantors do not cover the amount applied for.",
    "Deposits are below a third of the amount applied for.",
    "An existing loan is in arrears.",
    "Net pay would fall below a third of gross pay (two-thirds rule).",
    "Incomplete application: the latest payslip is missing.",
    "Membership is shorter than six months.",
)

_MEMBER_STATUSES = (MemberStatus.ACTIVE, MemberStatus.DORMANT, MemberStatus.EXITED)
_MEMBER_STATUS_WEIGHTS = (84, 11, 5)
_LOANS_PER_MEMBER = ((0, 1, 2, 3), (55, 32, 11, 2))  # 0.60 loans per member on average
MAX_LOANS_PER_MEMBER = 10  # the most `loans_per_member` may ask for on average
# Loan statuses a member in each status may hold, with weights.
_LOAN_STATUSES = {
    MemberStatus.ACTIVE: {
        LoanStatus.PENDING: 4,
        LoanStatus.APPROVED: 3,
        LoanStatus.DECLINED: 7,
        LoanStatus.ACTIVE: 40,
        LoanStatus.COMPLETED: 33,
        LoanStatus.DEFAULTED: 9,
        LoanStatus.WRITTEN_OFF: 3,
    },
    MemberStatus.DORMANT: {
        LoanStatus.DECLINED: 10,
        LoanStatus.ACTIVE: 20,
        LoanStatus.COMPLETED: 40,
        LoanStatus.DEFAULTED: 20,
        LoanStatus.WRITTEN_OFF: 10,
    },
    MemberStatus.EXITED: {
        LoanStatus.DECLINED: 15,
        LoanStatus.COMPLETED: 70,
        LoanStatus.WRITTEN_OFF: 15,
    },
}
_REPAYMENT_METHODS = (
    (PaymentMethod.MPESA, PaymentMethod.CHECKOFF, PaymentMethod.BANK, PaymentMethod.CASH),
    (60, 22, 10, 8),
)
_DEPOSIT_METHODS = (
    (PaymentMethod.CHECKOFF, PaymentMethod.MPESA, PaymentMethod.BANK, PaymentMethod.CASH),
    (40, 45, 10, 5),
)
# How many M-Pesa or cash payments a borrower makes per instalment (weekly payers make four);
# check-off and bank borrowers pay each instalment at once.
_PARTS = ((1, 2, 3, 4), (5, 10, 15, 70))
MAX_PARTS = max(_PARTS[0])
_PAID_IN_PARTS = (PaymentMethod.MPESA, PaymentMethod.CASH)
_DEPOSITS = (500, 1_000, 1_500, 2_000, 2_500, 3_000, 5_000, 10_000)
_SHARE_CAPITAL = ((2_000, 5_000, 10_000, 20_000), (20, 50, 20, 10))

# Tables in insert order (parents first).
TABLES = (
    Member.__table__,
    Loan.__table__,
    LoanInstallment.__table__,
    Repayment.__table__,
    Contribution.__table__,
)


@dataclass
class SeedResult:
    """What `seed()` did: rows written per table, loans per status, seconds taken."""

    counts: dict[str, int] = field(default_factory=dict)
    loan_statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None

    def summary(self) -> str:
        if self.skipped:
            return self.skipped
        rows = ", ".join(f"{count:,} {table}" for table, count in self.counts.items())
        statuses = ", ".join(f"{count:,} {status}" for status, count in self.loan_statuses.items())
        return f"Seeded the demo SACCO in {self.seconds:.1f} s: {rows}.\nLoans: {statuses}."


def seed(
    members: int = 2000,
    seed: int = 42,
    if_empty: bool = False,
    today: date | None = None,
    loans_per_member: float | None = None,
    instalment_parts: int = MAX_PARTS,
) -> SeedResult:
    """Build a demo SACCO of `members` members (loans, schedules, repayments, contributions),
    identical for the same `seed`, `today` (the anchor every date is relative to) and options.

    `loans_per_member` sets the average number of loans (default: the usual mix, 0.6 a member);
    `instalment_parts` caps how many payments an instalment is paid in (default 4: weekly M-Pesa
    payers; 1: every instalment in one payment). A benchmark uses them to shape the tables, e.g.
    2 and 1 give about 2 loans and 12 repayments a member.

    Only an empty database is seeded: when members exist already nothing at all is written (with
    or without `if_empty`, which only says that this is expected, as on every `make run` after the
    first), because demo records mixed into real ones would be impossible to tell apart.
    Commits once; a failure leaves the database as it was.
    """
    started = time.perf_counter()
    existing = db.session.scalar(select(func.count()).select_from(Member))
    if existing:
        if if_empty:
            return SeedResult(
                skipped=f"The database has {existing:,} members already; "
                "no demo data added (--if-empty)."
            )
        return SeedResult(
            skipped=f"Nothing seeded: the database has {existing:,} members already. "
            "seed-demo only fills an empty database."
        )
    if members < 1:
        return SeedResult(skipped="Nothing seeded: ask for at least one member.")
    if loans_per_member is not None and not 0 <= loans_per_member <= MAX_LOANS_PER_MEMBER:
        raise ValidationFailed(
            {"loans_per_member": f"Give an average between 0 and {MAX_LOANS_PER_MEMBER}."}
        )
    if not 1 <= instalment_parts <= MAX_PARTS:
        raise ValidationFailed({"instalment_parts": f"Give a number from 1 to {MAX_PARTS}."})
    try:
        builder = _Builder(
            Random(seed), today or clock.today(), _products(), loans_per_member, instalment_parts
        )
        builder.build(members)
        _reset_sequences()
        audit.record(
            Actor.system("seed-demo"),
            "demo.seeded",
            "database",
            None,
            seed=seed,
            members=members,
            loans_per_member=loans_per_member,
            instalment_parts=instalment_parts,
            counts=dict(builder.counts),
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    # Fresh statistics, so the query planner knows how the new rows are spread.
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return SeedResult(
        counts=dict(builder.counts),
        loan_statuses=dict(builder.loan_statuses),
        seconds=time.perf_counter() - started,
    )


def _products() -> list[tuple[ProductSpec, LoanProduct]]:
    """The demo products, created unless a product of that name exists (which is then used)."""
    existing = {p.name: p for p in db.session.scalars(select(LoanProduct))}
    # Ids given here, like every other seeded row's, so that a fresh database gets the same ones.
    next_id = (db.session.scalar(select(func.max(LoanProduct.id))) or 0) + 1
    pairs = []
    for spec in PRODUCTS:
        product = existing.get(spec.name)
        if product is None:
            product = LoanProduct(
                id=next_id,
                name=spec.name,
                interest_rate=Decimal(spec.interest_rate),
                interest_method=spec.interest_method,
                min_amount=Decimal(spec.min_amount),
                max_amount=Decimal(spec.max_amount),
                min_term_months=spec.min_term_months,
                max_term_months=spec.max_term_months,
                processing_fee_rate=Decimal(spec.processing_fee_rate),
                active=True,
            )
            db.session.add(product)
            next_id += 1
        pairs.append((spec, product))
    db.session.flush()
    return pairs


def _reset_sequences() -> None:
    """On PostgreSQL, move each id sequence past the ids assigned here, so that later inserts
    through the services do not collide with them."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in (LoanProduct.__table__, *TABLES):
        db.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"(SELECT MAX(id) FROM {table.name}))"
            )
        )


class _Installment:
    """A schedule line in memory, shaped like LoanInstallment so that `allocate` can work on it."""

    __slots__ = (
        "number",
        "due_date",
        "principal",
        "interest",
        "amount",
        "principal_paid",
        "interest_paid",
        "status",
        "paid_on",
    )

    def __init__(self, line):
        self.number, self.due_date = line.number, line.due_date
        self.principal, self.interest, self.amount = line.principal, line.interest, line.amount
        self.principal_paid = self.interest_paid = ZERO
        self.status, self.paid_on = InstallmentStatus.DUE, None

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.principal_paid - self.interest_paid


def _b36(number: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        out.append(digits[rest])
    return "".join(reversed(out))


def _scramble(counter: int, width: int) -> int:
    # Multiplying by a prime coprime to 36 permutes 0..36**width-1: unique, yet random-looking.
    return (counter * 2_654_435_761 + 12_345) % 36**width


class _Builder:
    """Generates rows member by member from one random stream and writes them in batches."""

    def __init__(
        self,
        rng: Random,
        today: date,
        products,
        loans_per_member: float | None = None,
        instalment_parts: int = MAX_PARTS,
    ):
        self.rng, self.today, self.anchor = rng, today, today
        self.products = products
        self.product_weights = [spec.weight for spec, _ in products]
        self.communities = [
            tuple(part.split() for part in parts) for parts in _COMMUNITIES.values()
        ]
        self.given = (_GIVEN_FEMALE.split(), _GIVEN_MALE.split())
        self.community_weights = [_COMMUNITY_WEIGHTS[name] for name in _COMMUNITIES]
        self.rows: dict[str, list[dict]] = {table.name: [] for table in TABLES}
        self.counts: Counter = Counter({"loan_products": len(products)})
        self.loan_statuses: Counter = Counter()
        self.next_id = {
            table.name: (db.session.scalar(select(func.max(table.c.id))) or 0) + 1
            for table in TABLES
        }
        self.phones: set[str] = set()
        self.reference_counter = 0
        self.unforced = list(LoanStatus)  # each status is given out once first
        self.loans_per_member = loans_per_member  # None: the usual mix (_LOANS_PER_MEMBER)
        self.instalment_parts = instalment_parts
        self._midnights: dict[date, datetime] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def build(self, members: int) -> None:
        national_ids = self.rng.sample(range(10_000_000, 40_000_000), members)
        for index, national_id in enumerate(national_ids, start=1):
            self.member(str(national_id))
            if index % MEMBER_BATCH == 0:
                self.flush()
        self.flush()

    def flush(self) -> None:
        for table in TABLES:
            rows = self.rows[table.name]
            for start in range(0, len(rows), CHUNK):
                db.session.execute(insert(table), rows[start : start + CHUNK])
            self.counts[table.name] += len(rows)
            rows.clear()

    def take_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def stamp(self, day: date, salt: int) -> datetime:
        """A deterministic time of day in office hours (08:00-17:00 in Nairobi) on `day`, UTC."""
        midnight = self._midnights.get(day)
        if midnight is None:
            midnight = self._midnights[day] = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return midnight + timedelta(hours=5, seconds=(salt * 7_919) % 32_400)

    def days_ago(self, low: int, high: int) -> date:
        return self.today - timedelta(days=self.rng.randint(low, high))

    def reference(self, method: str, day: date) -> str | None:
        self.reference_counter += 1
        counter = self.reference_counter
        if method == PaymentMethod.MPESA:  # receipts start with a year letter and a month letter
            year = chr(ord("A") + (day.year - 2006) % 26)
            return f"{year}{chr(ord('A') + day.month - 1)}{_b36(_scramble(counter, 8), 8)}"
        if method == PaymentMethod.BANK:
            return f"FT{day:%y%m%d}{_b36(_scramble(counter, 6), 6)}"
        if method == PaymentMethod.CHECKOFF:
            return f"PAYROLL-{day:%Y%m}-{counter:08d}"
        return f"RCT{counter:08d}" if counter % 4 else None  # cash: not every receipt is kept

    # -- members -----------------------------------------------------------------------------
    def phone(self) -> str:
        rng = self.rng
        while True:
            prefix = rng.choice(_NEW_PREFIXES if rng.random() < 0.04 else _MOBILE_PREFIXES)
            phone = f"254{prefix}{rng.randint(0, 999_999):06d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def member(self, national_id: str) -> None:
        rng = self.rng
        member_id = self.take_id("members")
        number = member_number_for(member_id)
        female_names, male_names, surnames = rng.choices(self.communities, self.community_weights)[
            0
        ]
        female = rng.random() < 0.52
        if rng.random() < 0.45:
            first = rng.choice(self.given[0] if female else self.given[1])
        else:
            first = rng.choice(female_names if female else male_names)
        last = rng.choice(surnames)
        status = rng.choices(_MEMBER_STATUSES, _MEMBER_STATUS_WEIGHTS)[0]
        # An exited member's story ends on the day they left: their dates are relative to it.
        self.today = self.anchor
        if status == MemberStatus.EXITED:
            self.today = self.anchor - relativedelta(months=rng.randint(6, 48))
        joined = self.days_ago(60, 8 * 365)
        phone = self.phone()
        email = None
        if rng.random() < 0.35:
            domain = rng.choice(_EMAIL_DOMAINS)
            email = f"{first}.{last}{rng.randint(1, 99)}@{domain}".lower()
        sms_opt_in = rng.random() < 0.93
        email_opt_in = email is not None and rng.random() < 0.8
        applied = [self.loan(member_id, number, status) for _ in range(self.loan_count())]
        if applied and min(applied) - timedelta(days=30) < joined:
            joined = min(applied) - timedelta(days=rng.randint(30, 400))
        created = self.stamp(joined, member_id)
        updated = self.stamp(self.today, member_id) if status == MemberStatus.EXITED else created
        search_name, search_last_name = search_key(first, last)
        self.rows["members"].append(
            {
                "id": member_id,
                "member_number": number,
                "first_name": first,
                "last_name": last,
                "phone": phone,
                "phone_sha256": phone_sha256(phone),
                "email": email,
                "national_id": national_id,
                "status": status,
                "joined_on": joined,
                "sms_opt_in": sms_opt_in,
                "email_opt_in": email_opt_in,
                "search_name": search_name,
                "search_last_name": search_last_name,
                "created_at": created,
                "updated_at": updated,
            }
        )
        self.contributions(member_id, status, joined)

    def contributions(self, member_id: int, status: str, joined: date) -> None:
        rng, today = self.rng, self.today
        shares = Decimal(rng.choices(*_SHARE_CAPITAL)[0])
        day = min(joined + timedelta(days=rng.randint(0, 10)), today)
        if rng.random() < 0.4:  # share capital in two halves
            later = day + timedelta(days=rng.randint(30, 120))
            if later <= today:
                half = shares / 2
                self.contribution(
                    member_id, half, ContributionKind.SHARE_CAPITAL, PaymentMethod.MPESA, day
                )
                shares, day = shares - half, later
        self.contribution(
            member_id,
            shares,
            ContributionKind.SHARE_CAPITAL,
            rng.choice((PaymentMethod.MPESA, PaymentMethod.BANK, PaymentMethod.CASH)),
            day,
        )
        if status == MemberStatus.ACTIVE:
            last_month, months = today, DEPOSIT_MONTHS
        elif status == MemberStatus.DORMANT:
            last_month, months = today - relativedelta(months=rng.randint(7, 18)), DEPOSIT_MONTHS
        else:  # `today` is the day the member left
            last_month, months = today, 6
        method = rng.choices(*_DEPOSIT_METHODS)[0]
        amount = Decimal(rng.choice(_DEPOSITS))
        pay_day = rng.randint(25, 28) if method == PaymentMethod.CHECKOFF else rng.randint(1, 28)
        last = last_month.year * 12 + last_month.month - 1
        for month in range(last - months + 1, last + 1):
            day = date(month // 12, month % 12 + 1, pay_day)
            if joined <= day <= today and rng.random() < 0.88:
                self.contribution(member_id, amount, ContributionKind.DEPOSIT, method, day)

    def contribution(self, member_id, amount, kind, method, day) -> None:
        contribution_id = self.take_id("contributions")
        created = self.stamp(day, contribution_id)
        self.rows["contributions"].append(
            {
                "id": contribution_id,
                "member_id": member_id,
                "amount": amount,
                "kind": kind,
                "method": method,
                "reference": self.reference(method, day),
                "paid_on": day,
                "recorded_by_id": None,
                "created_at": created,
                "updated_at": created,
            }
        )

    # -- loans -------------------------------------------------------------------------------
    def loan_count(self) -> int:
        """How many loans the next member has applied for."""
        if self.loans_per_member is None:
            return self.rng.choices(*_LOANS_PER_MEMBER)[0]
        # Binomial around the asked average: most members near it, a few with none or twice it.
        trials = max(3, math.ceil(2 * self.loans_per_member))
        share = self.loans_per_member / trials
        return sum(self.rng.random() < share for _ in range(trials))

    def loan_status(self, member_status: str) -> str:
        if member_status == MemberStatus.ACTIVE and self.unforced:
            return self.unforced.pop(0)
        weights = _LOAN_STATUSES[member_status]
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def terms(self, spec: ProductSpec, product: LoanProduct) -> tuple[Decimal, int]:
        rng = self.rng
        # Earlier entries are the common amounts: pick among a random-length head of the list.
        base = rng.choice(spec.amounts[: rng.randint(1, len(spec.amounts))])
        step = 500 if base < 20_000 else 1_000
        amount = Decimal(base + step * rng.randint(-3, 3))
        amount = min(max(amount, product.min_amount), product.max_amount)
        term = rng.choice(spec.terms[: rng.randint(1, len(spec.terms))])
        return amount, min(max(term, product.min_term_months), product.max_term_months)

    def loan(self, member_id: int, member_number: str, member_status: str) -> date:
        """Add a loan (with its schedule and repayments once disbursed); returns its application
        date."""
        rng = self.rng
        status = self.loan_status(member_status)
        spec, product = rng.choices(self.products, self.product_weights)[0]
        amount, term = self.terms(spec, product)
        loan_id = self.take_id("loans")
        self.loan_statuses[status] += 1
        row = {
            "id": loan_id,
            "member_id": member_id,
            "member_number": member_number,
            "product_id": product.id,
            "amount": amount,
            "interest_rate": product.interest_rate,
            "interest_method": product.interest_method,
            "term_months": term,
            "processing_fee": to_cents(amount * product.processing_fee_rate / HUNDRED),
            "status": status,
            "purpose": rng.choice(spec.purposes),
            "approval_date": None,
            "disbursement_date": None,
            "due_date": None,
            "decided_by_id": None,
            "decision_reason": None,
            "disbursement_method": None,
            "disbursement_reference": None,
            "closed_on": None,
        }
        if status in (LoanStatus.PENDING, LoanStatus.APPROVED, LoanStatus.DECLINED):
            applied, last_change = self.undisbursed(row, status)
            schedule = build_schedule(
                amount, product.interest_rate, term, product.interest_method, applied
            )
            row.update(
                monthly_payment=schedule.monthly_payment,
                total_payable=schedule.total_payable,
                paid_amount=ZERO,
                balance=schedule.total_payable,
            )
        else:
            applied, last_change = self.disbursed(row, status, product)
        row.update(
            application_date=applied,
            created_at=self.stamp(applied, loan_id),
            updated_at=self.stamp(last_change, loan_id + 1),
        )
        self.rows["loans"].append(row)
        return applied

    def undisbursed(self, row: dict, status: str) -> tuple[date, date]:
        rng, today = self.rng, self.today
        if status == LoanStatus.PENDING:
            applied = self.days_ago(0, 14)
            return applied, applied
        if status == LoanStatus.APPROVED:
            applied = self.days_ago(2, 21)
            row["approval_date"] = applied + timedelta(
                days=rng.randint(1, min(5, (today - applied).days))
            )
            return applied, row["approval_date"]
        applied = self.days_ago(3, 5 * 365)
        row["decision_reason"] = rng.choice(_DECLINE_REASONS)
        return applied, min(applied + timedelta(days=rng.randint(1, 7)), today)

    def disbursement_day(self, status: str, term: int) -> tuple[date, int]:
        """When a disbursed loan in `status` was paid out, and how many instalments its borrower
        paid in full before stopping (defaulted and written-off loans)."""
        rng, today = self.rng, self.today
        if status == LoanStatus.ACTIVE:
            elapsed = rng.randint(0, max(0, term - 2))
            return today - relativedelta(months=elapsed) - timedelta(days=rng.randint(0, 27)), term
        if status == LoanStatus.COMPLETED:
            back = timedelta(days=rng.randint(30, 5 * 365))
            return today - relativedelta(months=term) - back, term
        paid = rng.randint(0, term - 1)
        back = (95, 450) if status == LoanStatus.DEFAULTED else (400, 1_800)
        return today - relativedelta(months=paid + 1) - timedelta(days=rng.randint(*back)), paid

    def disbursed(self, row: dict, status: str, product: LoanProduct) -> tuple[date, date]:
        rng, today = self.rng, self.today
        term = row["term_months"]
        disbursed_on, paid_in_full = self.disbursement_day(status, term)
        applied = disbursed_on - timedelta(days=rng.randint(3, 21))
        schedule = build_schedule(
            row["amount"], product.interest_rate, term, product.interest_method, disbursed_on
        )
        method = PaymentMethod.MPESA if rng.random() < 0.65 else PaymentMethod.BANK
        row.update(
            approval_date=applied + timedelta(days=rng.randint(1, (disbursed_on - applied).days)),
            disbursement_date=disbursed_on,
            due_date=schedule.due_date,
            disbursement_method=method,
            disbursement_reference=self.reference(method, disbursed_on),
            monthly_payment=schedule.monthly_payment,
            total_payable=schedule.total_payable,
        )
        installments = [_Installment(line) for line in schedule.installments]
        pays_by = rng.choices(*_REPAYMENT_METHODS)[0]
        plan = self.payment_plan(installments, status, paid_in_full, disbursed_on, pays_by)
        paid, last_day = self.repay(row, installments, plan, pays_by)
        if (paid == row["total_payable"]) != (status == LoanStatus.COMPLETED):
            raise AssertionError(f"loan {row['id']} is {status} but paid {paid}")
        row.update(paid_amount=paid, balance=row["total_payable"] - paid)
        if status == LoanStatus.COMPLETED:
            row["closed_on"] = last_day
        elif status == LoanStatus.WRITTEN_OFF:
            first_unpaid = installments[paid_in_full].due_date
            written_off = first_unpaid + timedelta(days=rng.randint(180, 365))
            row["closed_on"] = last_day = max(min(written_off, today), last_day)
        for inst in installments:
            self.rows["loan_installments"].append(
                {
                    "id": self.take_id("loan_installments"),
                    "loan_id": row["id"],
                    "number": inst.number,
                    "due_date": inst.due_date,
                    "principal": inst.principal,
                    "interest": inst.interest,
                    "amount": inst.amount,
                    "principal_paid": inst.principal_paid,
                    "interest_paid": inst.interest_paid,
                    "status": inst.status,
                    "paid_on": inst.paid_on,
                }
            )
        return applied, max(last_day, disbursed_on)

    def payment_plan(self, installments, status, paid_in_full, disbursed_on, pays_by) -> list:
        """The borrower's payments as (day, amount), in date order: each instalment paid in one
        to four parts around its due date, cut short as the loan's status requires."""
        rng, today = self.rng, self.today
        parts_each = rng.choices(*_PARTS)[0] if pays_by in _PAID_IN_PARTS else 1
        parts_each = min(parts_each, self.instalment_parts)
        late_payer = rng.random() < 0.2
        payoff_after = None
        if status == LoanStatus.COMPLETED and len(installments) >= 3 and rng.random() < 0.15:
            payoff_after = rng.randint(1, len(installments) - 2)
        plan = []
        for index, inst in enumerate(installments):
            if index == payoff_after:  # pays the rest at once, a few weeks after the last due date
                day = installments[index - 1].due_date + timedelta(days=rng.randint(3, 25))
                rest = sum((i.amount for i in installments[index:]), ZERO)
                plan.append((day, rest))
                break
            if status in (LoanStatus.DEFAULTED, LoanStatus.WRITTEN_OFF) and index >= paid_in_full:
                if index == paid_in_full and rng.random() < 0.5:  # a last partial payment
                    part = (inst.amount * Decimal("0.4")).quantize(SHILLING, ROUND_DOWN)
                    if part > 0:
                        plan.append((inst.due_date + timedelta(days=rng.randint(-5, 10)), part))
                break
            late = rng.randint(-2, 20) if late_payer else rng.randint(-5, 2)
            plan.extend(self.parts(inst, parts_each, late))
        # Dates never go backwards, and no payment precedes the disbursement.
        day_floor, ordered = disbursed_on, []
        for day, amount in plan:
            day_floor = max(day_floor, day)
            ordered.append((day_floor, amount))
        cut = today
        if status == LoanStatus.ACTIVE and rng.random() < 0.2:  # a month or two behind
            cut = today - timedelta(days=rng.randint(20, 55))
        ordered = [(day, amount) for day, amount in ordered if day <= cut]
        if (
            status != LoanStatus.COMPLETED
            and ordered
            and sum(a for _, a in ordered) == sum((i.amount for i in installments), ZERO)
        ):
            ordered.pop()  # an open loan is never fully paid
        return ordered

    @staticmethod
    def parts(inst, count: int, late: int) -> list[tuple[date, Decimal]]:
        count = max(1, min(count, int(inst.amount // 100)))
        each = (inst.amount / count).quantize(SHILLING, ROUND_DOWN)
        amounts = [each] * (count - 1) + [inst.amount - each * (count - 1)]
        return [
            (inst.due_date + timedelta(days=late - 7 * (count - 1 - n)), amount)
            for n, amount in enumerate(amounts)
        ]

    def repay(self, row: dict, installments, plan, preferred: str) -> tuple[Decimal, date]:
        """Write the repayments of `plan`, allocated to the instalments (which are updated);
        returns the total paid and the last payment date."""
        rng = self.rng
        paid, last_day, first_open = ZERO, row["disbursement_date"], 0
        for day, amount in plan:
            method = preferred if rng.random() < 0.9 else PaymentMethod.MPESA
            principal, interest = allocate(installments[first_open:], amount, day)
            if principal + interest != amount:
                raise AssertionError(f"loan {row['id']}: {amount} does not fit the schedule")
            while (
                first_open < len(installments)
                and installments[first_open].status == InstallmentStatus.PAID
            ):
                first_open += 1
            repayment_id = self.take_id("repayments")
            created = self.stamp(day, repayment_id)
            self.rows["repayments"].append(
                {
                    "id": repayment_id,
                    "loan_id": row["id"],
                    "member_id": row["member_id"],
                    "amount": amount,
                    "principal_amount": principal,
                    "interest_amount": interest,
                    "method": method,
                    "reference": self.reference(method, day),
                    "paid_on": day,
                    "recorded_by_id": None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            paid += amount
            last_day = day
        return paid, last_day
