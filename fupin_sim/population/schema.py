"""The register schema: the columns of the household and person tables.

One description serves the synthetic generator (which writes it), the register loader
(which validates against it) and the docs. Categories are stored as small integer codes
in memory and as their names in files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES: dict[str, tuple[str, ...]] = {
    "region_type": ("farming", "pastoral", "urban_fringe"),
    # register status: not registered, registered poor (建档立卡, not exited), exited (已脱贫)
    "status": ("nonpoor", "poor", "exited"),
    # main cause of poverty (致贫原因) as registered
    "cause": ("none", "illness", "disability", "schooling", "skills", "capital", "aged", "other"),
    "sex": ("male", "female"),
    "labour": ("none", "partial", "full"),
    "school": ("none", "preschool", "compulsory", "high", "university"),
}
CODE = {name: {c: i for i, c in enumerate(cats)} for name, cats in CATEGORIES.items()}
NONPOOR, POOR, EXITED = 0, 1, 2
NO_LABOUR, PARTIAL, FULL = 0, 1, 2
NOT_IN_SCHOOL, PRESCHOOL, COMPULSORY, HIGH, UNIVERSITY = 0, 1, 2, 3, 4
NO_YEAR = -1


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | int | float | bool | category | year
    description: str
    low: float | None = None
    high: float | None = None
    required: bool = True
    default: object = None  # used when an optional column is absent

    @property
    def dtype(self):
        return {"id": np.int64, "int": np.int32, "float": np.float64, "bool": np.bool_,
                "category": np.int8, "year": np.int16}[self.kind]


HOUSEHOLD_COLUMNS = (
    Column("household_id", "id", "stable household id, unique", low=0),
    Column("village", "int", "village (行政村) number; covariate shocks hit a village together", low=0),
    Column("region_type", "category", "farming / pastoral / urban_fringe"),
    Column("status", "category", "register status: nonpoor (not registered), poor (registered), exited"),
    Column("cause", "category", "main registered cause of poverty; 'none' for non-registered"),
    Column("year_registered", "year", "year first registered (建档立卡); empty if never", low=1990, high=2100,
           required=False, default=None),
    Column("year_exited", "year", "year of the latest exit; empty if not exited", low=1990, high=2100,
           required=False, default=None),
    Column("income_wage", "float", "wage income 工资性收入, yuan/year, household total", low=0),
    Column("income_operating", "float", "operating income 经营性收入 (farming, herding, business), yuan/year; "
           "may be negative"),
    Column("income_property", "float", "property income 财产性收入, yuan/year", low=0),
    Column("income_transfer", "float", "transfer income 转移性收入, yuan/year", low=0),
    Column("assets", "float", "productive assets, yuan", low=0, required=False, default=0.0),
    Column("debt", "float", "outstanding debt, yuan", low=0, required=False, default=0.0),
    Column("housing_safe", "bool", "house is safe (住房安全有保障)", required=False, default=True),
    Column("insured", "bool", "members have basic medical insurance", required=False, default=True),
    Column("weight", "float", "households this record stands for", low=0, required=False, default=1.0),
    Column("deep_poverty_area", "bool", "lives in a deep-poverty area (深度贫困地区)", required=False, default=False),
    Column("harsh_area", "bool", "lives where 'one place cannot support its people' (一方水土养不起一方人): "
           "candidates for relocation", required=False, default=False),
    Column("land_mu", "float", "cropland, mu", low=0, required=False, default=0.0),
    Column("grassland_mu", "float", "grassland, mu", low=0, required=False, default=0.0),
    *(Column(f"programme_{source}", "float", f"the part of {source} income paid by the modelled policy instruments "
             "this year (not streams from earlier support), which a run from this register pays again "
             "if still due", required=False,
             default=0.0) for source in ("wage", "operating", "property", "transfer")),
)

PERSON_COLUMNS = (
    Column("person_id", "id", "stable person id, unique", low=0),
    Column("household_id", "id", "the person's household (household table)", low=0),
    Column("age", "int", "age in completed years", low=0, high=120),
    Column("sex", "category", "male / female"),
    Column("labour", "category", "labour capacity: none / partial / full"),
    Column("chronic", "bool", "has a chronic illness"),
    Column("disabled", "bool", "has a disability"),
    Column("school", "category", "school stage: none / preschool / compulsory / high / university"),
)

INCOME_SOURCES = ("wage", "operating", "property", "transfer")
