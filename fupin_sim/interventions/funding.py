"""Budgets, rationing and the cost ledger.

A budget line is an amount a year from one funding source, earmarked to some instruments
(or pooled for all), optionally split across areas by a rule (the deep-poverty allocation
of 000_2488b6b2437a55b6.txt). When eligible demand exceeds what the lines hold, households
are served in a stated priority order, ties broken by a common-random-number draw, and the
ranked list is served until the money runs out (strict order: nobody further down is served
because a cheaper case fits). Every yuan is written to the ledger under (year, instrument,
line, source, region, category).

A limited line that pays several instruments is shared by a stated rule, never by the order
the scenario lists them (`SHARE_RULES`): by need, the year's project library (项目库: each
instrument's eligible demand at the start of the year), or in proportions a planner sets.
Money a line has left at the end of a year follows its `unspent` rule (`UNSPENT_RULES`):
carried over to the same line (结转), re-pooled into the scenario's pooled line (统筹整合) or
returned; the budget table shows each part.

A planner can also scale one instrument's budget: `earmark` turns its budget on each line in
the unscaled run (what it drew, or its share where more) into its own line, multiplied.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fupin_sim.population import schema as S

SOURCES = {
    "central_special": "central special poverty funds (中央专项扶贫资金)",
    "provincial_special": "provincial / autonomous-region special funds",
    "local_special": "league, city and county special funds",
    "integrated_agriculture": "integrated agricultural funds (统筹整合涉农资金)",
    "east_west": "east-west cooperation funds, e.g. Beijing-Inner Mongolia (京蒙协作)",
    "enterprise_pairing": "enterprises paired with villages (万企帮万村)",
    "donations": "social donations",
    "relocation_finance": "relocation financing (易地扶贫搬迁): local-government bonds, special construction funds and "
                          "policy-bank loans arranged for the approved plan",
    "bank_credit": "bank credit for microloans (principal only)",
    "civil_affairs": "civil-affairs funds: 低保, 特困, medical assistance",
    "risk_compensation": "county risk-compensation fund for microloan defaults",
}
TO_HOUSEHOLDS = ("transfer", "in_kind", "interest_subsidy", "default_cover", "insurance_claim")
CATEGORIES = (*TO_HOUSEHOLDS, "insurance_margin", "overhead", "loan")
UNLIMITED = float("inf")
SHARE_RULES = {
    "need": "in proportion to each instrument's eligible demand at the start of the year (the year's project "
            "library, 项目库), each at most its demand; money beyond every demand is left for whoever needs it",
    "proportional": "in the shares the scenario states ({instrument: share}, adding up to 1)",
}
UNSPENT_RULES = {
    "carry": "carried over to the same line for one more year (结转); money unspent for a second year, or "
             "left when the line's dated years end, is re-pooled (收回统筹) into the pooled line, or returned when "
             "there is none, it is that line or it has ended too",
    "pool": "re-pooled at once into the scenario's pooled line (统筹整合), or returned when there is none or it "
            "is that line",
    "return": "returned to the treasury (收回)",
}


@dataclass
class BudgetLine:
    name: str
    source: str
    instruments: tuple[str, ...] | None  # None: pooled, for every instrument
    amounts: dict[int, float]  # year -> yuan (inf: entitlement, pays whatever is due)
    allocation: dict | None = None
    every_year: float | None = None  # an amount for every simulated year, however long the run
    excluded: tuple[str, ...] = ()  # instruments that draw on their own earmark instead (see `earmark`)
    share: dict | None = None  # how the instruments share it: {"rule": "need"} or proportional with "shares"
    unspent: str = "carry"  # what happens to money left at the end of a year (UNSPENT_RULES)
    parent: str | None = None  # an instrument's share of a line (`YearFunds.share`): the line it is part of

    def covers(self, instrument: str) -> bool:
        return (self.instruments is None or instrument in self.instruments) and instrument not in self.excluded

    @property
    def account(self) -> str:
        """The line the ledger and the budget table book it under."""
        return self.parent or self.name

    @property
    def breadth(self) -> float:
        """How many instruments it may pay: an instrument draws on its narrowest lines first."""
        if self.parent is not None:
            return 0.5  # an instrument's own share of a shared line comes before any line it shares
        return float("inf") if self.instruments is None else float(len(self.instruments))

    def amount(self, year: int) -> float:
        return self.amounts.get(year, self.every_year or 0.0)

    def open_after(self, year: int) -> bool:
        """Whether the line has money in a later year: a dated line ends with its last year, and
        what it has left then cannot be carried over to it."""
        return self.every_year is not None or any(y > year and v > 0 for y, v in self.amounts.items())


@dataclass(frozen=True)
class Account:
    """One year of a run's funds, as a scaled run needs them (`earmark`): what each instrument
    drew from each line, its share of each shared line, and what each line brought in."""
    drawn: dict[tuple[str, str], float]  # (instrument, line) -> yuan
    allotted: dict[tuple[str, str], float]  # (line, instrument) -> its share of a shared line (`YearFunds.share`)
    brought: dict[str, float]  # line -> yuan carried over or re-pooled into it from earlier years

    def budget(self, instrument: str, line: str) -> float:
        """What was the instrument's on the line: what it drew, or its share where that was more."""
        return max(self.drawn.get((instrument, line), 0.0), self.allotted.get((line, instrument), 0.0))


@dataclass
class Ledger:
    """Append-only record of every yuan: one row per (year, instrument, line, region, category)."""

    rows: list[dict] = field(default_factory=list)

    def add(self, year, instrument, line, source, region_amounts: np.ndarray, category: str) -> None:
        for region, amount in enumerate(region_amounts):
            if amount:
                self.rows.append({"year": year, "instrument": instrument, "line": line, "source": source,
                                  "region": S.CATEGORIES["region_type"][region], "category": category,
                                  "amount": float(amount)})

    def frame(self) -> pd.DataFrame:
        cols = ["year", "instrument", "line", "source", "region", "category", "amount"]
        return pd.DataFrame(self.rows, columns=cols)


class YearFunds:
    """What each budget line still holds this year, by area when the line is split by area."""

    def __init__(self, lines: list[BudgetLine], year: int, state, ledger: Ledger, rs,
                 brought: dict[str, float] | None = None):
        """`brought`: money each line brings from earlier years (line name -> yuan: carried
        over, or re-pooled into it)."""
        self.year, self.state, self.ledger, self.rs = year, state, ledger, rs
        brought = brought or {}
        self.brought = {ln.name: brought.get(ln.name, 0.0) for ln in lines}
        self.lines = [line for line in lines if line.amount(year) + self.brought[line.name] > 0]
        self.remaining = {}  # line name -> array over areas (one area unless split)
        for line in self.lines:
            self.remaining[line.name] = _allocate(line, line.amount(year) + self.brought[line.name], state)
        self.start = {k: v.sum() for k, v in self.remaining.items()}
        self.drawn: dict[tuple[str, str], float] = {}  # (instrument, line) -> yuan drawn this year
        self.shares: dict[tuple[str, str], float] = {}  # (line, instrument) -> its share this year

    def _take(self, instrument: str, line: str, area: int, amount: float) -> None:
        """Take `amount` from a line's money in `area`, and note what the instrument drew."""
        self.remaining[line][area] -= amount
        key = (instrument, self.by_name[line].account)
        self.drawn[key] = self.drawn.get(key, 0.0) + float(amount)

    def account(self) -> Account:
        return Account(dict(self.drawn), dict(self.shares), {k: v for k, v in self.brought.items() if v})

    @property
    def by_name(self) -> dict[str, BudgetLine]:
        return {ln.name: ln for ln in self.lines}

    def lines_for(self, instrument: str, loan: bool = False) -> list[BudgetLine]:
        """Lines an instrument may draw on, its narrowest first; loans only from bank credit."""
        usable = [ln for ln in self.lines if ln.covers(instrument) and (ln.source == "bank_credit") == loan]
        return sorted(usable, key=lambda ln: ln.breadth)

    def shared(self, instruments: list[str]) -> list[BudgetLine]:
        """The limited lines that several of `instruments` (the year's, public money) may draw on."""
        return [ln for ln in self.lines if np.isfinite(self.start[ln.name]) and ln.source != "bank_credit"
                and sum(ln.covers(i) for i in instruments) > 1]

    def share(self, demand: dict[str, float]) -> None:
        """Split every shared line among the instruments it pays, by its rule, before anyone is
        served: each instrument's part becomes a line of its own (`parent` the shared line).
        `demand`: each instrument's eligible demand at the start of the year (real yuan; 0 for
        one an unlimited line pays). What a line holds is what is left after this year's
        obligations from earlier years (`Instrument.carry`: interest subsidies, follow-up
        payments). Lines are shared narrowest first, and what one line gives an instrument no
        longer counts as its need on the wider ones."""
        need = dict(demand)
        shared = self.shared(list(need))
        for ln in self.lines:  # what unlimited lines, and lines of a single instrument, pay first
            covered = [i for i in need if ln.covers(i)]
            if ln.source == "bank_credit" or ln in shared:
                continue
            for i in covered:
                held = float(self.remaining[ln.name].sum())
                need[i] = max(need[i] - held, 0.0) if np.isfinite(held) else 0.0
        for ln in sorted(shared, key=lambda ln: ln.breadth):
            covered = [i for i in need if ln.covers(i)]
            held = float(self.remaining[ln.name].sum())
            if ln.share is not None and ln.share["rule"] == "proportional":
                parts = {i: held * ln.share["shares"].get(i, 0.0) for i in covered}
            else:
                total = sum(need[i] for i in covered)
                parts = ({i: need[i] for i in covered} if total <= held
                         else {i: held * need[i] / total for i in covered})
            whole = self.remaining[ln.name]
            for i, part in parts.items():
                if part <= 0:
                    continue
                sub = BudgetLine(f"{ln.name}/{i}", ln.source, (i,), {self.year: part}, ln.allocation, parent=ln.name)
                self.lines.append(sub)
                self.remaining[sub.name] = _allocate(sub, part, self.state)
                self.start[sub.name] = part
                self.shares[(ln.name, i)] = part
                need[i] = max(need[i] - part, 0.0)
            given = sum(parts.values())
            whole *= (held - given) / held if held > 0 else 0.0  # what is left is for whoever needs it
            self.start[ln.name] = held - given

    def ration(self, instrument: str, rows: np.ndarray, cost: np.ndarray, order_keys,
               loan: bool = False, capacity: float | None = None,
               weights: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Serve `rows` (household rows, with real-yuan `cost` each) in priority order while the
        lines last. `order_keys()` gives the priority sort keys; it is only called (and the
        households only sorted) when money or capacity runs short. Returns the served
        positions (into `rows`) and the charge to each line that paid (a line missing paid nothing).
        `weights`: the rows' household weights, when the caller has them (for `capacity`)."""
        lines = self.lines_for(instrument, loan)
        if len(rows) == 0 or not lines:
            return np.zeros(0, dtype=np.int64), {}
        h = self.state.h
        split = lines[0].allocation is not None
        held_total = sum(self.remaining[ln.name].sum() for ln in lines)
        if capacity is not None and weights is None:
            weights = h["weight"].take(rows)
        total = cost.sum()
        short = (split or total > held_total
                 or (capacity is not None and weights.sum() > capacity + 1e-9))
        if not short:  # everyone is served, in row order
            everyone = np.arange(len(rows))
            first = lines[0].name
            if len(lines) == 1 or (self.remaining[first][0] >= total and cost.min() >= 0):
                self._take(instrument, first, 0, total)  # one line pays it all (an entitlement, often):
                return everyone, {first: cost}           # no running total to split it by
            return everyone, self._pay(instrument, lines, 0, cost, np.cumsum(cost))
        ids = h["household_id"].take(rows)

        def tie(at):  # the draw that breaks ties of the priority keys (the first key is the most important)
            return self.rs.uniform(f"priority.{instrument}", self.year, ids if at is None else ids.take(at))
        if capacity is not None:
            limit = int(np.ceil(capacity / max(weights.min(), 1e-300))) + 1
        else:
            limit = int(np.ceil(held_total / max(cost.min(), 1e-300))) + 1 if not split else len(rows)
        order = priority_order(order_keys(), tie, limit)
        if capacity is not None:  # a limit on how many households can be served (posts, caseload)
            order = order[np.cumsum(weights[order]) <= capacity + 1e-9]
        served = np.zeros(len(rows), dtype=bool)
        charges = {ln.name: np.zeros(len(rows)) for ln in lines}
        paid = set()
        area = _area_of(lines[0], self.state, rows)
        for a in (np.unique(area[order]) if split else [0]):
            sub = order[area[order] == a] if split else order
            held = np.cumsum([self.remaining[ln.name][a] for ln in lines])[-1]
            cum = np.cumsum(cost[sub])
            ok = np.logical_and.accumulate(cum <= held * (1 + 1e-12))  # strict priority order
            sub, cum = sub[ok], cum[ok]
            served[sub] = True
            for name, part in self._pay(instrument, lines, a, cost[sub], cum).items():
                charges[name][sub] += part
                paid.add(name)
        return np.flatnonzero(served), {name: v for name, v in charges.items() if name in paid}

    def _pay(self, instrument: str, lines: list[BudgetLine], area: int, cost: np.ndarray,
             cum: np.ndarray) -> dict[str, np.ndarray]:
        """Charge costs served in this order (`cum`, their running total) to the lines in turn,
        each until its money in `area` runs out; returns each paying line's part of each cost.
        Lines after the one that covered the last yuan pay nothing and are left out."""
        start = cum - cost
        lower, parts = 0.0, {}
        for ln in lines:
            if not len(cum) or lower >= cum[-1]:
                break
            remaining = self.remaining[ln.name]
            upper = lower + remaining[area]
            if lower == 0.0 and upper >= cum[-1] and cost.min() >= 0:  # the first line pays it all (an
                part = cum - start  # entitlement, often): the same values as below, as 0 <= start <= cum
            else:
                part = np.clip(np.minimum(cum, upper) - np.maximum(start, lower), 0.0, None)
            parts[ln.name] = part
            self._take(instrument, ln.name, area, part.sum())
            lower = upper
        return parts

    def charge(self, instrument: str, rows: np.ndarray, amount: np.ndarray, category: str,
               received_share: float = 1.0) -> np.ndarray:
        """Pay recurring obligations (e.g. interest subsidies) as far as the lines allow, in
        priority of the rows given; returns the amount paid for each row."""
        pos, charges = self.ration(instrument, rows, amount, lambda: [])
        paid = np.zeros(len(rows))
        paid[pos] = amount[pos]
        self.book(instrument, rows, charges, {category: 1.0})
        return paid

    def book(self, instrument: str, rows: np.ndarray, charges: dict[str, np.ndarray], split: dict[str, float]) -> None:
        """Write charges to the ledger by region, split across categories by shares."""
        if not charges:
            return
        region = self.state.h["region_type"].take(rows)
        by_name = self.by_name
        for name, amounts in charges.items():
            per_region = np.bincount(region, weights=amounts, minlength=len(S.CATEGORIES["region_type"]))
            line = by_name[name]
            for category, share in split.items():
                self.ledger.add(self.year, instrument, line.account, line.source, per_region * share, category)

    def _spent_unlimited(self, line: BudgetLine) -> float:
        return sum(r["amount"] for r in self.ledger.rows if r["year"] == self.year and r["line"] == line.name)

    def report(self, pooled: str | None) -> tuple[list[dict], dict[str, float]]:
        """The year's account of each line (its instruments' shares booked under it), and
        what each line brings into next year: carried over (结转), or re-pooled into the
        line `pooled` (统筹整合; None: the scenario has none, and the money is returned)."""
        out, brought = [], {}
        for ln in self.lines:
            if ln.parent is not None:
                continue
            parts = [ln, *(sub for sub in self.lines if sub.parent == ln.name)]
            available = ln.amount(self.year) + self.brought[ln.name]
            limited = np.isfinite(available)  # an unlimited line (entitlements) has no amount to report
            if ln.source == "bank_credit":  # a bank's lending quota, not public money: what is not lent lapses
                left = float(sum(self.remaining[p.name].sum() for p in parts))
                out.append({"year": self.year, "line": ln.name, "source": ln.source, "available": available,
                            "spent": available - left, "unspent": left, "carried": np.nan, "pooled": np.nan,
                            "returned": np.nan})
                continue
            if not limited:
                out.append({"year": self.year, "line": ln.name, "source": ln.source, "available": np.nan,
                            "spent": self._spent_unlimited(ln), "unspent": np.nan, "carried": np.nan,
                            "pooled": np.nan, "returned": np.nan})
                continue
            left = float(sum(self.remaining[p.name].sum() for p in parts))
            spent = available - left
            old = max(self.brought[ln.name] - spent, 0.0)  # money brought in is spent first
            if ln.unspent == "carry" and ln.open_after(self.year):
                carried, again = left - old, old
            else:
                carried, again = 0.0, left
            pool = again if ln.unspent != "return" and pooled is not None and pooled != ln.name else 0.0
            returned = left - carried - pool
            if carried > 0:
                brought[ln.name] = brought.get(ln.name, 0.0) + carried
            if pool > 0:
                brought[pooled] = brought.get(pooled, 0.0) + pool
            out.append({"year": self.year, "line": ln.name, "source": ln.source, "available": available,
                        "spent": spent, "unspent": left, "carried": carried, "pooled": pool, "returned": returned})
        return out, brought


def earmark(lines: list[BudgetLine], year: int, scale: dict[str, float], reference: Account) -> list[BudgetLine]:
    """The year's lines with some instruments' budgets scaled (a planner's "× its budget").

    An instrument's budget B on a limited line is what was its own there in the reference run
    (the same run with no instrument scaled; `reference`, its account of the year): what it
    drew, or its share of a shared line (`YearFunds.share`) where that was more. For each
    instrument with a scale s, s × B becomes the instrument's own line (same source; named
    `line[instrument]`), and it no longer draws on the line, which keeps what it held in the
    reference run (carry-overs included) less B for the others. So the instrument spends at
    most s × its budget (0 at s = 0), money is only added (s > 1) or removed (s < 1) on its
    behalf, never moved between instruments, and more s never serves fewer in the year
    (strict priority order); whom the others serve can still change where the instrument
    changed incomes they rank by, and later years follow the changed households. As the
    year's amounts come from the reference run, a scaled run's own leftovers are returned,
    not carried (`unspent`). Scaled instruments must not draw on unlimited lines or lines
    split by area (`Programme.check_scale` refuses them).
    """
    out, own = [], []
    for line in lines:
        held = line.amount(year) + reference.brought.get(line.name, 0.0)
        if not np.isfinite(held):
            out.append(line)
            continue
        scaled = tuple(i for i in scale if line.covers(i))
        taken = sum(reference.budget(i, line.name) for i in scaled)
        out.append(replace(line, amounts={year: max(held - taken, 0.0)}, every_year=None, unspent="return",
                           excluded=(*line.excluded, *scaled)))
    for instrument, s in scale.items():  # its own lines, in the order it drew on the originals
        for line in sorted((ln for ln in lines if ln.covers(instrument)), key=lambda ln: ln.instruments is None):
            given = s * reference.budget(instrument, line.name)
            if np.isfinite(line.amount(year)) and given > 0:
                own.append(BudgetLine(f"{line.name}[{instrument}]", line.source, (instrument,), {year: given},
                                      unspent="return"))
    return out + own


def priority_order(keys: list[np.ndarray], tie, limit: int) -> np.ndarray:
    """Positions in lexicographic order of `keys` (first key first), exact ties broken by the
    draw `tie(positions)` (all positions for None): exact for at least the first `limit`
    positions, all rationing needs. The draw is made only for the positions that need it.

    With few to serve out of many, it partitions on one composite of the keys (all but the
    last must be whole numbers, e.g. flags) and sorts only the head exactly, instead of
    sorting every candidate; otherwise it sorts everything.
    """
    if not keys:  # the draw is the only key
        keys, tie = [tie(None)], None

    def ordered(at=None):
        ranked = keys if at is None else [k[at] for k in keys]
        return lex_order(ranked if tie is None else [*ranked, tie(at)])

    n = len(keys[0])
    if limit >= n // 4 or any(not np.array_equal(k, np.round(k)) for k in keys[:-1]):
        return ordered()
    composite = np.zeros(n)
    for k in keys[:-1]:  # whole-number keys, scaled so that an earlier key always dominates
        k = k.astype(np.float64)
        composite = composite * (k.max() - k.min() + 2.0) + (k - k.min())
    last = keys[-1].astype(np.float64)
    span = last.max() - last.min()
    composite = composite * 2.0 + (last - last.min()) / (span if span > 0 else 1.0)  # in [0, 1]
    bound = np.partition(composite, limit)[limit]
    head = np.flatnonzero(composite <= bound)  # holds every position that can be among the first `limit`
    return head[ordered(head)]


def lex_order(keys: list[np.ndarray]) -> np.ndarray:
    """`np.lexsort(keys[::-1])`: positions in lexicographic order of `keys` (first key first),
    equal keys in position order. Done as one sort of each position's rank by all keys packed
    with the position into one integer: numpy's unstable sorts are vectorised, while lexsort
    runs a stable sort per key, some ten times slower at 10^5 candidates. A first key of
    floats with few ties (incomes) is sorted alone, and only its ties by all keys."""
    n = len(keys[0])
    if n == 0 or any(k.dtype.kind == "f" and np.isnan(k).any() for k in keys):
        return np.lexsort(keys[::-1])
    first = keys[0]
    if len(keys) > 1 and first.dtype.kind == "f":  # a first key of mostly distinct values (incomes):
        order = np.argsort(first)                   # it alone orders all but its ties
        sorted_first = first.take(order)
        tied = sorted_first[1:] == sorted_first[:-1]
        if not tied.any():
            return order
        if 8 * np.count_nonzero(tied) < n:  # the ties' slots take their households in the full order
            in_run = np.zeros(n, dtype=bool)
            in_run[1:] = tied
            in_run[:-1] |= tied
            slots = np.flatnonzero(in_run)
            members = np.sort(order.take(slots))
            order[slots] = members.take(lex_order([k.take(members) for k in keys]))
            return order
    code, codes = np.zeros(n, dtype=np.int64), 1  # rank by the keys so far, and how many ranks
    for k in keys:
        rank, ranks = _dense_rank(k)
        if codes * ranks * n >= 2**62:  # would overflow: rank the codes so far first
            code, codes = _dense_rank(code)
        code = code * ranks + rank
        codes *= ranks
    if codes * n >= 2**62:
        code, codes = _dense_rank(code)
    code *= n
    code += np.arange(n)  # every value distinct, so any sort gives the one order
    return np.sort(code) % n


def _dense_rank(k: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's rank among the distinct values of `k` (0, 1, ...) and how many there are.
    Few distinct values (flags, household sizes) are looked up in the sorted table of them:
    numpy's vectorised argsort slows down many times over on such data."""
    values = np.unique(k)
    if len(values) <= 4096:
        return np.searchsorted(values, k), len(values)
    order = np.argsort(k)
    s = k[order]
    step = np.empty(len(k), dtype=np.int64)
    step[0] = 0
    np.not_equal(s[1:], s[:-1], out=step[1:])
    np.cumsum(step, out=step)
    rank = np.empty(len(k), dtype=np.int64)
    rank[order] = step
    return rank, int(step[-1]) + 1


def _area_of(line: BudgetLine, state, rows: np.ndarray) -> np.ndarray:
    if line.allocation is None:
        return np.zeros(len(rows), dtype=np.int64)
    return state.h["village"].take(rows).astype(np.int64)


def _allocate(line: BudgetLine, amount: float, state) -> np.ndarray:
    """A line's yearly amount, split across villages when it has an allocation rule.

    The deep-poverty rule (000_2488b6b2437a55b6.txt): fixed sums come off the top for each
    deep-poverty area (a sum per area and per poor person), and the rest is shared in
    proportion to poor persons, deep-poverty areas weighted `bonus` (10 points) above the rest.
    """
    if line.allocation is None:
        return np.array([amount], dtype=np.float64)
    if not np.isfinite(amount):
        raise ValueError("an unlimited line cannot be split by area")
    h = state.h
    n_areas = int(h["village"].max(initial=0)) + 1
    registered = h["status"] != S.NONPOOR
    poor_persons = np.bincount(h["village"], weights=h["weight"] * h["size"] * registered, minlength=n_areas)
    deep = np.bincount(h["village"], weights=h["deep_poverty_area"], minlength=n_areas) > 0
    rule = line.allocation
    fixed = deep * (rule["per_area_fixed"] + rule["per_poor_person"] * poor_persons)
    if fixed.sum() > amount:
        return fixed * (amount / fixed.sum())
    share = poor_persons * (1.0 + rule["bonus"] * deep)
    rest = amount - fixed.sum()
    return fixed + (rest * share / share.sum() if share.sum() > 0 else rest / n_areas)
