"""The policy menu and the yearly interventions step.

A scenario lists the instruments it uses under `interventions:` (each with its rules, whom
it targets, its priority order and the years it runs) and the money under `budgets:`. Each
year, in the scenario's order: every instrument first applies what earlier support still
yields (`carry`), then picks its eligible households, ranks them, is rationed by the budget
lines it may draw on, books every yuan in the ledger and changes the served households.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import yaml

from fupin_sim.checks import parse_years
from fupin_sim.errors import InputError, close_match
from fupin_sim.interventions import assistance, credit, employment, health, industry, other, relocation
from fupin_sim.interventions.base import PRIORITY_RULES, TARGETS, Context, Instrument, priority_keys
from fupin_sim.interventions.funding import (SHARE_RULES, SOURCES, UNLIMITED, UNSPENT_RULES, Account, BudgetLine,
                                             Ledger, YearFunds, earmark)
from fupin_sim.metrics import Metric
from fupin_sim.params import Params
from fupin_sim.population.rules import select, wsum
from fupin_sim.population.state import Carried
from fupin_sim.population import schema as S
from fupin_sim.population.schema import INCOME_SOURCES

REGISTRY: dict[str, type[Instrument]] = {cls.name: cls for cls in (
    industry.IndustryMenu, industry.IndustryLinkage, industry.AssetIncome, industry.CollectiveEconomy,
    industry.Solar, credit.Microloan, employment.SkillsTraining, employment.LabourTransfer,
    employment.PublicWelfarePost, employment.ForestRanger, relocation.Relocation, health.HealthAssistance,
    health.ChronicAssistance, health.SupplementaryInsurance, assistance.Dibao, assistance.TemporaryAssistance,
    assistance.Tekun,
    assistance.AgedSupport, assistance.MonitoringAssistance, assistance.Backstop, other.EducationSubsidy, other.HousingRenovation,
    other.EcologicalCompensation, other.AntiPovertyInsurance)}
ENTRY_KEYS = {"instrument", "years", "targets", "causes", "priority", "overhead_share", "capacity", "rules"}
LINE_KEYS = {"source", "instruments", "amounts", "allocation", "share", "unspent"}
ALLOCATION_RULES = {"deep_poverty": {"bonus": 0.10, "per_area_fixed": 0.0, "per_poor_person": 1000.0}}
METRICS = (
    Metric("served_{instrument}", "flow", "households", "{instrument}: households served", "{instrument}受益户数"),
    Metric("spending_{instrument}", "flow", "yuan", "{instrument}: spending (yuan)", "{instrument}支出(元)"),
    Metric("spending", "flow", "yuan", "Spending (yuan)", "支出(元)", about="public money, not loan principal"),
    Metric("unspent", "flow", "yuan", "Unspent budget (yuan)", "未使用预算(元)",
           about="left on the limited lines at the end of the year, before carry-over (结转) and re-pooling"),
    Metric("returned", "flow", "yuan", "Budget returned (yuan)", "收回资金(元)",
           about="unspent money returned to the treasury under the lines' rules, not carried or re-pooled"),
    Metric("loans_issued", "flow", "yuan", "Microloans issued (yuan)", "小额信贷发放额(元)"),
    Metric("loans_outstanding", "stock", "yuan", "Microloans outstanding (yuan)", "小额信贷余额(元)"),
    Metric("loan_defaults", "flow", "yuan", "Microloan defaults (yuan)", "小额信贷违约额(元)"))


def instrument_defaults() -> dict[str, Params]:
    """Each instrument's default rules (from instruments.yaml) as parameters with sources."""
    ref = resources.files("fupin_sim.params").joinpath("instruments.yaml")
    tree = yaml.safe_load(ref.read_text(encoding="utf-8"))
    return {name: Params.from_tree(tree.get(name, {}), str(ref)) for name in REGISTRY}


def describe() -> str:
    """The policy menu as Markdown: every instrument with its defaults and their sources
    (docs/instruments.md is this text; `python -m fupin_sim.interventions > docs/instruments.md`)."""
    defaults = instrument_defaults()
    out = ["# Policy instruments", "",
           "Generated from the code and `fupin_sim/params/instruments.yaml` by "
           "`python -m fupin_sim.interventions > docs/instruments.md`; a test keeps it current.", "",
           "Every instrument also takes `years`, `targets`, `priority`, `overhead_share` and `capacity` "
           "(most households it can serve a year, per 10,000 households) in a scenario.", "",
           "Target groups: " + "; ".join(f"`{k}`: {v}" for k, v in TARGETS.items()) + ".", "",
           "Priority rules: " + ", ".join(f"`{r}`" for r in PRIORITY_RULES) + ".", ""]
    for name, cls in sorted(REGISTRY.items(), key=lambda kv: (kv[1].family, kv[0])):
        kind = "one-off (once per household)" if cls.once else "yearly while eligible"
        out += [f"## `{name}` ({cls.family})", "", f"{cls.description[0].upper()}{cls.description[1:]}.", "",
                f"Default targets `{cls.targets}`; priority {', '.join(f'`{r}`' for r in cls.priority) or 'none'}; "
                f"{kind}; {'funded by bank credit (principal)' if cls.loan else f'households receive: {cls.category}'}.",
                ""]
        params = defaults[name]
        if params.paths():
            out += ["| rule | default | unit | source | confidence |", "| --- | --- | --- | --- | --- |"]
            for path in params.paths():
                leaf = params[path]
                out.append(f"| `{path}` | {leaf.value} | {leaf.unit} | {leaf.source} | {leaf.confidence} |")
            out.append("")
    out += ["## Funding sources", "", *(f"- `{k}`: {v}" for k, v in SOURCES.items()), ""]
    return "\n".join(out)


@dataclass
class Configured:
    label: str
    instrument: Instrument
    rules: Params
    years: tuple[int, int] | None  # None: every simulated year
    targets: str
    priority: tuple[str, ...]
    overhead_share: float
    capacity: float | None = None  # most households it can serve a year, per 10,000 of the population
    causes: tuple[str, ...] | None = None  # only households registered for these causes of poverty (因户施策)

    def households_limit(self, ctx, rules) -> float | None:
        """Most households (weighted) it can serve this year: the instrument's own limit (posts,
        placements, caseload) and the scenario's `capacity` (staff, builders), whichever is lower."""
        own = self.instrument.capacity(ctx, rules)
        if self.capacity is None:
            return own
        common = self.capacity * ctx.households / 1e4
        return common if own is None else min(own, common)


@dataclass
class Programme:
    """A scenario's instruments and budget lines, and the ledger they write."""

    items: list[Configured] = field(default_factory=list)
    lines: list[BudgetLine] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    budget_rows: list[dict] = field(default_factory=list)
    accounts: dict[int, Account] = field(default_factory=dict)  # year -> what was drawn, allotted, brought in
    scale: dict[str, float] = field(default_factory=dict)  # instrument -> × its budget (see `earmark`)
    reference: dict[int, Account] = field(default_factory=dict)  # the unscaled run's `accounts`
    served: dict[str, np.ndarray] = field(default_factory=dict)  # instrument -> household rows served this year
    brought: dict[str, float] = field(default_factory=dict)  # line -> yuan it brings into next year (carried, pooled)

    def fresh(self) -> "Programme":
        """A copy for one run: new instrument objects and an empty ledger."""
        items = [Configured(it.label, type(it.instrument)(), it.rules, it.years, it.targets, it.priority,
                            it.overhead_share, it.capacity, it.causes) for it in self.items]
        return Programme(items, list(self.lines))

    def pooled_line(self, year: int) -> str | None:
        """The line money left in `year` is re-pooled into (统筹整合): the first limited line for
        every instrument, if it has money in a later year (None: the money is returned)."""
        return next((ln.name for ln in self.lines if ln.instruments is None and ln.source != "bank_credit"
                     and np.isfinite([*ln.amounts.values(), ln.every_year or 0.0]).all()
                     and ln.open_after(year)), None)

    @staticmethod
    def _candidates(it: Configured, ctx, rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whom an instrument could serve now: the eligible household rows with a cost, the
        cost of serving each (yuan per simulated household) and their weights."""
        h = ctx.h
        rows = ctx.target_rows(it.targets)
        if it.causes is not None:
            codes = [S.CODE["cause"][c] for c in it.causes]
            rows = ctx.among(rows, np.isin(h["cause"], codes))
        if it.instrument.once:
            rows = select(rows, ~h[f"served_{it.label}"].take(rows))
        rows = it.instrument.eligible(ctx, rules, rows)
        unit = np.asarray(it.instrument.cost(ctx, rules, rows), dtype=np.float64)
        keep = unit > 0
        if not keep.all():
            rows, unit = rows[keep], unit[keep]
        return rows, unit, ctx.weights.take(rows)

    def _demand(self, ctx, funds: YearFunds, active: list[Configured]) -> dict[str, float]:
        """Each instrument's demand on the shared lines at the start of the year (the project
        library, 项目库): what serving all its eligible households would cost, within its
        capacity. Worked out only for instruments a shared line pays and no unlimited line does."""
        public = [it for it in active if not it.instrument.loan]
        shared = funds.shared([it.label for it in public])
        unlimited = [ln for ln in funds.lines if not np.isfinite(funds.start[ln.name])]
        demand = {}
        for it in public:
            if not any(ln.covers(it.label) for ln in shared) or any(ln.covers(it.label) for ln in unlimited):
                demand[it.label] = 0.0
                continue
            rules = it.rules.at(ctx.year)
            rows, unit, weights = self._candidates(it, ctx, rules)
            cost = float((unit * weights).sum()) * (1.0 + it.overhead_share)
            limit = it.households_limit(ctx, rules)
            if limit is not None and weights.sum() > limit:
                cost *= limit / weights.sum()
            demand[it.label] = cost
        return demand

    def item(self, label: str) -> Configured:
        """The instrument listed under `label`."""
        return next(it for it in self.items if it.label == label)

    def paying_lines(self, label: str) -> list[BudgetLine]:
        """The lines that may pay for an instrument (principal and public money alike)."""
        return [ln for ln in self.lines if ln.covers(label)]

    def budgeted(self) -> list[str]:
        """Instruments with a budget a planner can scale: paid only from limited lines, none of
        them split by area. Entitlements (any unlimited line pays them) have no budget: they
        pay whatever is due."""
        return [it.label for it in self.items if self._unscalable(it.label) is None]

    def _unscalable(self, label: str) -> str | None:
        lines = self.paying_lines(label)
        unlimited = [ln.name for ln in lines if not np.isfinite([*ln.amounts.values(), ln.every_year or 0.0]).all()]
        if unlimited:
            return (f"it is an entitlement, paid whatever is due from unlimited line(s) {unlimited}: "
                    "it has no budget to scale")
        if not lines:
            return "no budget line pays for it"
        split = [ln.name for ln in lines if ln.allocation is not None]
        if split:
            return f"line(s) {split} are split by area (allocation:), which instrument scales do not support"
        return None

    def check_scale(self, scale: dict, where: str = "instrument_scale") -> dict[str, float]:
        """Validated instrument scales ({instrument label: factor >= 0}), without the factors of 1."""
        import math
        import numbers

        if not isinstance(scale, dict):
            raise InputError(f"expected {{instrument: factor}}, got {scale!r}", where=where)
        labels = [it.label for it in self.items]
        out = {}
        for label, f in scale.items():
            at = f"{where}.{label}"
            if label not in labels:
                raise InputError(f"unknown instrument {label!r}{close_match(str(label), labels)}; instruments "
                                 f"with a budget to scale: {self.budgeted()}", where=at)
            if isinstance(f, bool) or not isinstance(f, numbers.Real) or not math.isfinite(f) or f < 0:
                raise InputError(f"expected a finite factor >= 0, got {f!r}", where=at)
            why = self._unscalable(label)
            if why:
                raise InputError(f"{label!r} cannot be scaled: {why}; instruments with a budget to scale: "
                                 f"{self.budgeted()}", where=at)
            if float(f) != 1.0:
                out[str(label)] = float(f)
        return out

    def prepare(self, state) -> None:
        """Declare (and add) what the instruments keep in the state."""
        for item in self.items:
            columns, kept = dict(item.instrument.columns), frozenset()
            if item.instrument.once:  # who has had it (a household formed from one that had it, too)
                columns[f"served_{item.label}"] = (np.bool_, False)
                kept = frozenset({f"served_{item.label}"})
            state.declare(f"instrument {item.instrument.name}", Carried(columns, item.instrument.values, kept))

    def step(self, state, p, rs, year: int) -> dict:
        if self.scale and year not in self.reference:
            raise RuntimeError(f"instrument scales need the unscaled run's draws for {year} (Simulation steps it)")
        if self.scale:  # the year's amounts, carry-overs included, are the reference run's
            funds = YearFunds(earmark(self.lines, year, self.scale, self.reference[year]), year, state, self.ledger, rs)
        else:
            funds = YearFunds(self.lines, year, state, self.ledger, rs, self.brought)
        active = [it for it in self.items if it.years is None or it.years[0] <= year <= it.years[1]]
        ctx = Context(state, p, rs, year, int(p["policy.support_until"]), funds,
                      counted=tuple(dict.fromkeys(k for it in active for k in it.instrument.counts)))
        out: dict = {f"{kind}_{it.label}": 0.0 for it in self.items for kind in ("served", "spending")}
        h = state.h
        spent_before = len(self.ledger.rows)
        self.served = {}
        for it in active:
            it.instrument.carry(ctx, it.rules.at(year))
        ctx.changed()  # the carried streams changed incomes anywhere
        # what earlier support still yields (carried streams) stays part of a household's income
        # in a register; what the instruments pay now (`Context.pay`) they would pay again
        for s in INCOME_SOURCES:
            h[f"programme_{s}"].fill(0.0)
        funds.share(self._demand(ctx, funds, active))
        for it in active:
            rules = it.rules.at(year)
            rows, unit, weights = self._candidates(it, ctx, rules)
            real = unit * (1.0 + it.overhead_share) * weights
            def keys(it=it, rows=rows):
                return it.instrument.first_keys(ctx, rows) + priority_keys(ctx, list(it.priority), rows)

            pos, charges = funds.ration(it.label, rows, real, keys, loan=it.instrument.loan,
                                        capacity=it.households_limit(ctx, rules), weights=weights)
            if len(pos) < len(rows):  # the others' charges are 0: booked without them, the sums are the same
                served, unit, weights = rows[pos], unit[pos], weights[pos]
                charges = {name: part.take(pos) for name, part in charges.items()}
            else:  # everyone (`pos` is then 0, 1, ...)
                served = rows
            split = it.instrument.serve(ctx, rules, served, unit) or {it.instrument.category: 1.0}
            ctx.changed(served)
            o = it.overhead_share
            shares = {k: v / (1.0 + o) for k, v in split.items()}
            if o:
                shares["overhead"] = o / (1.0 + o)
            funds.book(it.label, served, charges, shares)
            if it.instrument.once:
                h[f"served_{it.label}"][served] = True
            self.served[it.label] = served
            out[f"served_{it.label}"] = float(weights.sum())
        new = self.ledger.rows[spent_before:]
        for it in active:
            out[f"spending_{it.label}"] = sum(r["amount"] for r in new if r["instrument"] == it.label
                                              and r["category"] != "loan")
        out["spending"] = sum(r["amount"] for r in new if r["category"] != "loan")
        out["loans_issued"] = sum(r["amount"] for r in new if r["category"] == "loan")
        report, self.brought = funds.report(self.pooled_line(year))
        self.budget_rows.extend(report)
        self.accounts[year] = funds.account()
        out["unspent"] = sum(r["unspent"] for r in report if np.isfinite(r["unspent"]))
        out["returned"] = sum(r["returned"] for r in report if np.isfinite(r["returned"]))
        if "loan_balance" in h:
            out["loans_outstanding"] = wsum(h["loan_balance"], h["weight"])
            out["loan_defaults"] = state.values.get("loan_defaults", 0.0)
        return out


def parse(data: dict, years: tuple[int, int], file: str | None) -> Programme:
    """Build and fully validate a programme from a scenario's `interventions:` and `budgets:`;
    `years` are the scenario's years, which schedules and budgets must lie within."""
    defaults = instrument_defaults()
    items, listed = [], {}  # listed: instrument class -> its label
    entries = {} if data.get("interventions") is None else data["interventions"]
    if not isinstance(entries, dict):
        raise InputError("expected a mapping of intervention names to their settings", file=file,
                         where="interventions")
    for label, entry in entries.items():
        where = f"interventions.{label}"
        entry = _mapping({} if entry is None else entry, ENTRY_KEYS, file, where)
        name = entry.get("instrument", label)
        if not isinstance(name, str) or name not in REGISTRY:  # a list or a mapping is unhashable
            raise InputError(f"unknown instrument {name!r}{close_match(str(name), REGISTRY)}; "
                             f"available: {sorted(REGISTRY)}", file=file,
                             where=f"{where}.instrument" if "instrument" in entry else where)
        cls = REGISTRY[name]
        if name in listed and cls.carries_over():  # its state and random streams are its class's, not its label's
            raise InputError(f"instrument {name!r} is already listed as {listed[name]!r}; an instrument that "
                             "carries support from year to year (loans, income streams, posts) may appear once",
                             file=file, where=where)
        listed.setdefault(name, str(label))
        rules = defaults[name].override(entry.get("rules") or {}, file=file, where=f"{where}.rules"
                                        ).located(f"{where}.rules.")
        span = _years(entry["years"], years, file, f"{where}.years") if "years" in entry else None
        targets = entry.get("targets", cls.targets)
        if not isinstance(targets, str) or targets not in TARGETS:
            raise InputError(f"unknown target group {targets!r}{close_match(str(targets), TARGETS)}; "
                             f"known: {sorted(TARGETS)}", file=file, where=f"{where}.targets")
        priority = entry.get("priority", list(cls.priority))
        priority = [priority] if isinstance(priority, str) else priority
        if not isinstance(priority, list):
            raise InputError("expected a list of priority rules", file=file, where=f"{where}.priority")
        for i, rule in enumerate(priority):
            if not isinstance(rule, str) or rule not in PRIORITY_RULES:
                raise InputError(f"unknown priority rule {rule!r}{close_match(str(rule), PRIORITY_RULES)}; "
                                 f"known: {list(PRIORITY_RULES)}", file=file, where=f"{where}.priority[{i}]")
        overhead = entry.get("overhead_share", 0.0)
        if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) or not 0 <= overhead <= 1:
            raise InputError(f"expected a share in [0, 1], got {overhead!r}", file=file,
                             where=f"{where}.overhead_share")
        capacity = check_capacity(entry.get("capacity"), file, f"{where}.capacity")
        causes = _causes(entry["causes"], file, f"{where}.causes") if "causes" in entry else None
        items.append(Configured(str(label), cls(), rules, span, targets, tuple(priority), float(overhead), capacity,
                                causes))
    labels = [it.label for it in items]
    lines = _parse_budgets({} if data.get("budgets") is None else data["budgets"], labels, years, file)
    for it in items:
        funded = [ln for ln in lines if ln.covers(it.label) and (ln.source == "bank_credit") == it.instrument.loan]
        if len({ln.allocation is not None for ln in funded}) > 1:
            raise InputError(f"{it.label!r} draws on lines split by area and lines that are not; fund it from "
                             "one kind only", file=file, where="budgets")
    return Programme(items, lines)


def _causes(value, file, where: str) -> tuple[str, ...]:
    """The causes of poverty an instrument is for (因户施策: 因病, 因残, 因学, 缺技术, 缺资金...)."""
    known = [c for c in S.CATEGORIES["cause"] if c != "none"]
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value:
        raise InputError(f"expected a list of causes of poverty, from {known}", file=file, where=where)
    for i, cause in enumerate(value):
        if not isinstance(cause, str) or cause not in known:
            raise InputError(f"unknown cause of poverty {cause!r}{close_match(str(cause), known)}; known: {known}",
                             file=file, where=f"{where}[{i}]")
    return tuple(value)


def check_capacity(value, file, where: str) -> float | None:
    """An instrument's `capacity` (households per 10,000 a year), or None for none."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 <= value < float("inf")):
        raise InputError(f"expected households per 10,000 a year (a number >= 0), got {value!r}",
                         file=file, where=where)
    return None if value is None else float(value)


def with_budgets(programme: Programme, budgets: dict, years: tuple[int, int], file, where: str) -> Programme:
    """The programme with its budget lines re-read from `budgets` (a scenario's mapping),
    validated as in a file; errors name `where` (e.g. the sweep) before the line's key."""
    try:
        lines = _parse_budgets(budgets, [it.label for it in programme.items], years, file)
    except InputError as e:
        raise InputError(e.detail, file=e.file, where=f"{where}.{e.where}") from None
    return Programme(list(programme.items), lines)


def _mapping(entry, known: set[str], file, where: str) -> dict:
    """A settings mapping whose keys are all known (an unknown one is named, with a close match)."""
    if not isinstance(entry, dict):
        raise InputError(f"expected a mapping ({', '.join(sorted(known))})", file=file, where=where)
    for key in entry:
        if key not in known:
            raise InputError(f"unknown key{close_match(str(key), known)}; known: {sorted(known)}", file=file,
                             where=f"{where}.{key}")
    return entry


def _years(value, run: tuple[int, int], file, where) -> tuple[int, int]:
    first, last = parse_years(value, file, where)
    if first < run[0] or last > run[1]:
        raise InputError(f"years {first}-{last} fall outside the scenario's years {run[0]}-{run[1]}", file=file,
                         where=where)
    return first, last


def _parse_budgets(budgets, labels: list[str], years: tuple[int, int], file) -> list[BudgetLine]:
    if not isinstance(budgets, dict):
        raise InputError("expected a mapping of budget line names to their settings", file=file, where="budgets")
    lines = []
    for name, entry in budgets.items():
        where = f"budgets.{name}"
        entry = _mapping(entry, LINE_KEYS, file, where)
        source = entry.get("source", name)
        if not isinstance(source, str) or source not in SOURCES:
            raise InputError(f"unknown funding source {source!r}{close_match(str(source), SOURCES)}; "
                             f"known: {sorted(SOURCES)}", file=file,
                             where=f"{where}.source" if "source" in entry else where)
        instruments = entry.get("instruments", "all")
        if instruments == "all":
            covered = None
        else:
            instruments = [instruments] if isinstance(instruments, str) else instruments
            if not isinstance(instruments, list) or not instruments:
                raise InputError("expected 'all' or a list of intervention names", file=file,
                                 where=f"{where}.instruments")
            for i, label in enumerate(instruments):
                if label not in labels:
                    raise InputError(f"{label!r} is not an intervention of this scenario"
                                     f"{close_match(str(label), labels)}; interventions: {labels}",
                                     file=file, where=f"{where}.instruments[{i}]")
            covered = tuple(instruments)
        if "amounts" not in entry:
            raise InputError("missing 'amounts' (yuan a year: a number, 'unlimited', or {year: amount})",
                             file=file, where=where)
        every_year = None
        if isinstance(entry["amounts"], dict):
            amounts = _amounts(entry["amounts"], years, file, f"{where}.amounts")
        else:  # one amount: every simulated year, however long the run
            amounts, every_year = {}, _amount(entry["amounts"], file, f"{where}.amounts")
        allocation = entry.get("allocation")
        if allocation is not None:
            allocation = _allocation(allocation, file, f"{where}.allocation")
            if any(not np.isfinite(v) for v in [*amounts.values(), every_year or 0.0]):
                raise InputError("an unlimited line cannot be split by area", file=file, where=f"{where}.allocation")
        limited = all(np.isfinite(v) for v in [*amounts.values(), every_year or 0.0])
        unspent = entry.get("unspent", "carry")
        if "unspent" in entry and source == "bank_credit":
            raise InputError("a bank's lending quota is not public money: what is not lent lapses; remove 'unspent'",
                             file=file, where=f"{where}.unspent")
        if "unspent" in entry and not limited:
            raise InputError("an entitlement line (unlimited) pays whatever is due and has nothing left to carry "
                             "over; remove 'unspent'", file=file, where=f"{where}.unspent")
        if not isinstance(unspent, str) or unspent not in UNSPENT_RULES:
            raise InputError(f"unknown rule {unspent!r}{close_match(str(unspent), UNSPENT_RULES)}; known: "
                             f"{sorted(UNSPENT_RULES)}", file=file, where=f"{where}.unspent")
        share = _share(entry["share"], covered, labels, limited, file, f"{where}.share") if "share" in entry else None
        lines.append(BudgetLine(str(name), source, covered, amounts, allocation, every_year, share=share,
                                unspent=unspent))
    return lines


def _share(value, covered: tuple[str, ...] | None, labels: list[str], limited: bool, file, where) -> dict:
    """A shared line's rule: `need`, or `{rule: proportional, shares: {instrument: share}}`
    with shares of the line's instruments adding up to 1."""
    rule = value if isinstance(value, str) else value.get("rule") if isinstance(value, dict) else None
    if not isinstance(rule, str) or rule not in SHARE_RULES:
        raise InputError(f"expected one of {sorted(SHARE_RULES)}, or {{rule: proportional, shares: "
                         f"{{instrument: share}}}}, got {value!r}", file=file, where=where)
    if not limited:
        raise InputError("an entitlement line (unlimited) pays everyone due and has nothing to share; remove "
                         "'share'", file=file, where=where)
    if covered is not None and len(covered) < 2:
        raise InputError(f"the line pays one instrument only ({list(covered)}); there is nothing to share",
                         file=file, where=where)
    if rule == "need":
        if isinstance(value, dict) and set(value) - {"rule"}:
            raise InputError(f"the need rule takes no other keys, got {sorted(set(value) - {'rule'})}",
                             file=file, where=where)
        return {"rule": "need"}
    extra = set(value) - {"rule", "shares"} if isinstance(value, dict) else set()
    if not isinstance(value, dict) or not isinstance(value.get("shares"), dict) or extra:
        raise InputError("expected {rule: proportional, shares: {instrument: share, ...}}", file=file, where=where)
    shares, errors = {}, []
    for label, v in value["shares"].items():
        if label not in labels or (covered is not None and label not in covered):
            errors.append(f"{where}.shares.{label}: not an instrument this line pays"
                          f"{close_match(str(label), list(covered or labels))}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            errors.append(f"{where}.shares.{label}: expected a share in [0, 1], got {v!r}")
        else:
            shares[str(label)] = float(v)
    if not errors and abs(sum(shares.values()) - 1.0) > 1e-9:
        errors.append(f"{where}.shares: the shares add up to {sum(shares.values()):g}, not 1")
    if errors:
        raise InputError("; ".join(errors), file=file)
    return {"rule": "proportional", "shares": shares}


def _amount(value, file, where) -> float:
    if value == "unlimited":
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value == float("inf"):
        raise InputError(f"expected an amount in yuan or 'unlimited', got {value!r}", file=file, where=where)
    if value < 0:
        raise InputError(f"a budget cannot be negative, got {value!r}", file=file, where=where)
    return float(value)


def _amounts(value: dict, years: tuple[int, int], file, where) -> dict[int, float]:
    """A line's amounts by year. A dated budget may run past the scenario's years (a run of
    its first years, a file extending one with a longer schedule): the years outside are not
    simulated. A line none of whose years the scenario simulates is an error (a typed year)."""
    out = {}
    for year, v in value.items():
        if isinstance(year, bool) or not isinstance(year, int):
            raise InputError(f"budget years are whole numbers, got {year!r}", file=file, where=where)
        out[year] = _amount(v, file, f"{where}.{year}")
    inside = {y: v for y, v in out.items() if years[0] <= y <= years[1]}
    if out and not inside:
        year = next(iter(out))
        raise InputError(f"year {year} is outside the scenario's years {years[0]}-{years[1]}", file=file,
                         where=f"{where}.{year}")
    return inside


def _allocation(value, file, where) -> dict:
    if not isinstance(value, dict) or "rule" not in value:
        raise InputError(f"expected {{rule: deep_poverty, ...}}; rules: {sorted(ALLOCATION_RULES)}", file=file,
                         where=where)
    rule = value["rule"]
    if not isinstance(rule, str) or rule not in ALLOCATION_RULES:
        raise InputError(f"unknown allocation rule {rule!r}{close_match(str(rule), ALLOCATION_RULES)}; "
                         f"known: {sorted(ALLOCATION_RULES)}", file=file, where=f"{where}.rule")
    out = dict(ALLOCATION_RULES[rule])
    for key, v in value.items():
        if key == "rule":
            continue
        if key not in out:
            raise InputError(f"unknown key{close_match(key, out)}; known: {sorted(out)}", file=file,
                             where=f"{where}.{key}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise InputError(f"expected a number >= 0, got {v!r}", file=file, where=f"{where}.{key}")
        out[key] = float(v)
    return out
