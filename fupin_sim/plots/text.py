"""Every word a figure, report or workbook shows, in English and Chinese, in one place.

`label(name, lang)` names a metric, column, instrument, funding source or category;
`text(key, lang, **values)` gives a sentence or title. A name with no entry is shown as
it is (a parameter path such as `income.wage_growth` reads better raw than guessed).
Notes on results (a comparison's caveats) are in `fupin_sim.notes`, which the core
writes without importing the plotting layer."""
from __future__ import annotations

from fupin_sim.experiments.calibrate.objective import METRICS as MOMENTS
from fupin_sim.experiments.compare import METRICS as COMPARISON_METRICS
from fupin_sim.experiments.forecast import METRICS as FORECAST_METRICS
from fupin_sim.notes import LANGUAGES
from fupin_sim.results import METRICS as SUMMARY_METRICS

# every metric's label, from the one registry: the engine's summary (and its derived columns),
# comparisons' headline rows, calibration moments and forecast aggregates, each declared where
# it is produced
METRICS = SUMMARY_METRICS | COMPARISON_METRICS | MOMENTS | FORECAST_METRICS

AGGREGATIONS = {  # suffixes of sweep outputs, e.g. exits_sum
    "final": ("final year", "末年"), "first": ("first year", "首年"), "sum": ("sum over years", "各年合计"),
    "mean": ("mean over years", "各年均值"), "min": ("minimum", "最小值"), "max": ("maximum", "最大值"),
    "change": ("change", "变化"),
}

INSTRUMENTS = {
    "industry_menu": ("Industry menu subsidies", "产业扶贫菜单式补贴"),
    "industry_linkage": ("Links to firms and cooperatives", "带贫益贫(联农带农)"),
    "asset_income": ("Asset-income shares", "资产收益扶贫"),
    "collective_economy": ("Village collective economy", "村集体经济"),
    "solar": ("Solar income", "光伏扶贫"),
    "microloan": ("Microloans", "扶贫小额信贷"),
    "skills_training": ("Skills training", "技能培训"),
    "labour_transfer": ("Organised labour transfer", "劳务输出"),
    "public_welfare_post": ("Public-welfare posts", "公益性岗位"),
    "forest_ranger": ("Forest-ranger posts", "生态护林员"),
    "relocation": ("Relocation", "易地扶贫搬迁"),
    "health_assistance": ("Medical assistance", "医疗救助"),
    "chronic_assistance": ("Chronic-disease assistance", "慢病救助"),
    "supplementary_insurance": ("Supplementary insurance", "补充商业保险"),
    "dibao": ("Minimum living guarantee (低保)", "最低生活保障(低保)"),
    "temporary_assistance": ("Temporary assistance (临时救助)", "临时救助"),
    "tekun": ("Extreme-poverty support (特困)", "特困人员供养"),
    "aged_support": ("Support for the aged and bedridden", "老弱病残兜底补助"),
    "monitoring_assistance": ("Monitoring assistance", "防返贫监测帮扶"),
    "education_subsidy": ("Education subsidies", "教育资助"),
    "housing_renovation": ("Housing renovation (危房改造)", "危房改造"),
    "ecological_compensation": ("Ecological compensation", "生态补偿"),
    "anti_poverty_insurance": ("Anti-poverty insurance (防贫保险)", "防贫保险"),
}

FUNDING_SOURCES = {
    "central_special": ("Central special funds", "中央专项扶贫资金"),
    "provincial_special": ("Provincial special funds", "省级专项扶贫资金"),
    "local_special": ("League, city and county funds", "盟市县专项扶贫资金"),
    "integrated_agriculture": ("Integrated agricultural funds", "统筹整合涉农资金"),
    "east_west": ("East-west cooperation", "东西部协作资金"),
    "enterprise_pairing": ("Enterprise pairing", "万企帮万村"),
    "donations": ("Social donations", "社会捐赠"),
    "bank_credit": ("Bank credit (loan principal)", "银行信贷(本金)"),
    "civil_affairs": ("Civil-affairs funds", "民政资金"),
    "risk_compensation": ("Risk-compensation fund", "风险补偿金"),
}

CATEGORIES = {
    "farming": ("Farming area", "农区"), "pastoral": ("Pastoral area", "牧区"),
    "urban_fringe": ("Urban fringe", "城郊"),
    "nonpoor": ("Not registered", "非建档立卡户"), "poor": ("Registered poor", "贫困户"),
    "exited": ("Exited", "已脱贫户"),
    "high": ("High risk", "高风险"), "medium": ("Medium risk", "中风险"), "low": ("Low risk", "低风险"),
    "illness_costs": ("Illness costs", "医疗支出"), "schooling_costs": ("Schooling costs", "教育支出"),
    "transfers_fell": ("Transfers fell", "转移性收入下降"), "earnings_fell": ("Earnings fell", "劳动收入下降"),
    "drought": ("Drought", "旱灾"), "debt": ("Debt", "债务"),
    "transfer": ("Cash transfer", "现金转移"), "in_kind": ("In kind", "实物或服务"),
    "interest_subsidy": ("Interest subsidy", "贴息"), "default_cover": ("Default cover", "风险补偿"),
    "insurance_claim": ("Insurance claim", "保险赔付"), "insurance_margin": ("Insurer's margin", "保险公司结余"),
    "overhead": ("Overhead", "管理费用"), "loan": ("Loan principal", "贷款本金"),
    "forecast": ("Forecast (ranked risk)", "预测(风险排序)"), "income_rank": ("Lowest income first", "收入由低到高"),
    "all": ("All households", "全部户"), "monitoring": ("Monitoring population", "监测对象范围"),
    "income_below_1.5x_line": ("Income below 1.5 × the line", "收入低于1.5倍贫困线"),
    "large_medical_bill": ("Large medical bill", "大额医疗支出"),
    "lifted_by_transfers": ("Above the line only through transfers", "依靠转移性收入过线"),
    "any_rule": ("Any of the three rules", "任一规则"),
    "top_5pct": ("5% of households", "5%的农户"), "top_10pct": ("10% of households", "10%的农户"),
    "top_20pct": ("20% of households", "20%的农户"),
    "fitted": ("Fitted target", "拟合目标"), "comparison": ("Comparison only, not fitted", "仅作对照,未参与拟合"),
}

CONFIDENCE = {"high": ("high", "高"), "medium": ("medium", "中"), "low": ("low", "低")}

COLUMNS = {  # table headings
    "year": ("Year", "年份"), "metric": ("Metric", "指标"), "value": ("Value", "数值"), "mean": ("Mean", "均值"),
    "mean_diff": ("Difference (mean)", "差值(均值)"), "se": ("Standard error", "标准误"),
    "ci_low": ("95% CI low", "95%置信区间下限"), "ci_high": ("95% CI high", "95%置信区间上限"),
    "base_mean": ("Baseline (mean)", "基准方案(均值)"), "alt_mean": ("Alternative (mean)", "比较方案(均值)"),
    "p_value": ("p-value", "p值"), "reps": ("Replicates", "重复次数"), "alternative": ("Scenario", "方案"),
    "instrument": ("Instrument", "政策工具"), "line": ("Budget line", "预算科目"), "source": ("Source", "来源"),
    "region": ("Region", "区域"), "category": ("Category", "类别"), "amount": ("Amount (yuan)", "金额(元)"),
    "available": ("Budget (yuan)", "预算(元)"), "spent": ("Spent (yuan)", "已支出(元)"),
    "parameter": ("Parameter", "参数"), "unit": ("Unit", "单位"), "confidence": ("Confidence", "可信度"),
    "q05": ("5th percentile", "5%分位数"), "q10": ("10th percentile", "10%分位数"), "q25": ("25th percentile", "25%分位数"),
    "q50": ("Median", "中位数"), "q75": ("75th percentile", "75%分位数"), "q90": ("90th percentile", "90%分位数"),
    "q95": ("95th percentile", "95%分位数"), "observed": ("Observed", "观测值"), "sd": ("Standard deviation", "标准差"),
    "weight": ("Weight", "权重"), "fitted": ("Fitted", "拟合值"), "replicate_sd": ("Replicate sd", "重复间标准差"),
    "z": ("z-score", "z值"), "contribution": ("Contribution to distance", "距离贡献"),
    "within_1sd": ("Within 1 sd", "在1倍标准差内"), "within_2sd": ("Within 2 sd", "在2倍标准差内"),
    "note": ("Note", "说明"), "output": ("Output", "输出指标"), "role": ("Role", "用途"),
    "S1": ("First-order index S1", "一阶指数S1"), "ST": ("Total index ST", "总效应指数ST"),
    "noise_share": ("Noise share", "随机噪声占比"), "run_id": ("Run", "运行编号"), "point": ("Design point", "设计点"),
    "replicate": ("Replicate", "重复"), "seed": ("Seed", "随机种子"), "by": ("Grouped by", "分组方式"),
    "group": ("Group", "组别"), "tier": ("Risk tier", "风险等级"), "status": ("Register status", "建档状态"),
    "household_id": ("Household", "户编号"), "population": ("Population", "范围"), "method": ("Method", "方法"),
    "auc": ("AUC", "AUC"), "brier": ("Brier score", "Brier评分"), "n": ("Households", "户数"),
    "events": ("Fell below the line", "跌破贫困线户数"), "prevalence": ("Share that fell", "跌破比例"),
    "capacity": ("Monitoring capacity", "监测容量"), "watched": ("Watched", "监测户数"),
    "hits": ("Fallers caught", "命中户数"), "precision": ("Precision", "精确率"), "recall": ("Share caught", "召回率"),
    "decile": ("Decile", "十分位组"), "mean_predicted": ("Predicted (mean)", "预测均值"),
    "cause": ("Cause of poverty", "致贫原因"), "region_type": ("Region", "区域"), "size": ("Persons", "人口"),
    "main_driver": ("Main driver", "主要风险因素"), "p_dissolved": ("P(dissolved)", "消亡概率"),
    "income_pc_now": ("Income per person now (yuan)", "当前人均收入(元)"), "line_now": ("Line now (yuan)", "当前贫困线(元)"),
}

TABLES = {  # table and sheet names
    "summary": ("Yearly summary", "年度汇总"), "budget": ("Budgets and spending", "预算与支出"),
    "ledger": ("Cost ledger", "资金台账"), "bands": ("Uncertainty bands", "不确定性区间"),
    "replicates": ("Replicates", "各次重复结果"), "spending_by_instrument": ("Spending by instrument (yuan)", "各政策工具支出(元)"),
    "comparison": ("Paired differences", "配对差值"), "headline": ("Headline: totals over the run", "主要结果:全期合计"),
    "results": ("Runs", "各次运行"), "design": ("Design", "试验设计"), "point_means": ("Means by design point", "各设计点均值"),
    "sensitivity": ("Sobol' indices", "Sobol敏感性指数"), "noise": ("Stochastic noise", "随机噪声"),
    "fit": ("Fit against targets", "目标拟合"), "best": ("Fitted parameters", "拟合参数"),
    "draws": ("Parameter draws (ABC)", "参数抽样(ABC)"), "risk": ("Household risk", "农户风险"),
    "aggregate": ("Households below the line", "低于贫困线户数"), "highest_risk": ("Highest-risk households", "风险最高的农户"),
    "backtest": ("Forecast scores", "预测评分"), "monitoring": ("Monitoring rules compared", "监测规则比较"),
    "reliability": ("Reliability by decile", "分组可靠性"), "forecast_aggregate": ("Forecast, below the line", "预测低于贫困线户数"),
}

TEXT = {
    # figure titles and axes
    "trajectory": ("Poverty trajectory", "贫困变化趋势"),
    "stock": ("Poverty stock", "贫困存量"), "flows": ("Yearly flows", "年度流量"),
    "persons_axis": ("persons", "人"), "households_per_year": ("households per year", "户/年"),
    "bands_note": ("bands: 50% and 90% of replicates", "阴影:重复模拟的50%和90%区间"),
    "spending_title": ("Spending by instrument and by funding source", "按政策工具和资金来源的支出"),
    "by_instrument": ("By instrument", "按政策工具"), "by_source": ("By funding source", "按资金来源"),
    "other": ("Other", "其他"), "spending_axis": ("spending ({unit})", "支出({unit})"),
    "comparison_title": ("Paired differences with 95% confidence intervals, {reps} paired replicates (common random numbers)",
                         "配对差值及95%置信区间,{reps}次配对重复(共同随机数)"),
    "minus_baseline": ("{metric}: scenario − baseline", "{metric}:方案 − 基准"),
    "ce_title": ("Cost-effectiveness against the baseline (totals over the run)", "相对基准方案的成本效果(全期合计)"),
    "baseline": ("Baseline", "基准方案"),
    "extra_spending_axis": ("extra spending ({unit})", "增加支出({unit})"), "frontier": ("Efficient frontier", "有效前沿"),
    "risk_title": ("Relapse risk (返贫风险) within {h} years", "{h}年内返贫风险"),
    "risk_axis": ("P(below the line within {h} years)", "{h}年内低于贫困线的概率"),
    "households_axis": ("households", "户"),
    "expected_count": ("Households below the line, with 10–90% interval", "低于贫困线户数(10%–90%区间)"),
    "reliability_title": ("Reliability of the forecast", "预测可靠性"),
    "predicted_axis": ("predicted P(below the line within h years), decile mean", "预测跌破贫困线概率(十分位均值)"),
    "observed_axis": ("observed share", "实际比例"),
    "perfect": ("perfect calibration", "完全校准"),
    "roc_title": ("Monitoring population (exited + not registered)", "监测对象(已脱贫户+非建档立卡户)"),
    "fpr": ("false positive rate", "误报率"), "tpr": ("true positive rate (fallers caught)", "命中率"),
    "sweep_title": ("{output} across the sweep", "{output}随参数变化"),
    "binned_mean": ("mean by decile of the parameter", "按参数十分位的均值"),
    "surface_title": ("{output}: quadratic response surface (R² {r2})", "{output}:二次响应面(R² {r2})"),
    "sensitivity_title": ("Sobol' indices with {level} bootstrap intervals", "Sobol敏感性指数及{level}自助法区间"),
    "s1": ("first order S1", "一阶指数S1"), "st": ("total ST", "总效应指数ST"),
    "noise_share": ("noise share {share}", "随机噪声占比{share}"), "sobol_index": ("Sobol' index", "Sobol指数"),
    "fit_title": ("Calibration: fitted against observed", "校准:拟合值与观测值"),
    "lower_bound": (" (observed: a lower bound)", "(观测值为下限)"),
    "upper_bound": (" (observed: an upper bound)", "(观测值为上限)"),
    "comparison_only": ("\n(comparison only, not fitted)", "\n(仅作对照,未参与拟合)"),
    "fit_summary": ("{name}: {k} of {n} fitted targets within 2 sd", "{name}:{n}个拟合目标中{k}个在2倍标准差内"),
    "observed_sd": ("observed ± sd", "观测值±标准差"), "fitted": ("fitted", "拟合值"),
    "draws_title": ("Parameter draws kept by each ABC round (the last: draws.csv)",
                    "各轮ABC保留的参数抽样(最后一轮即draws.csv)"),
    "abc_round": ("ABC round", "ABC轮次"), "best_fit": ("best fit", "最优拟合"),
    "yuan": ("yuan", "元"), "million_yuan": ("million yuan", "百万元"), "10k_yuan": ("10,000 yuan", "万元"),
    "persons_unit": ("persons", "人"), "10k_persons": ("10,000 persons", "万人"),
    "households_unit": ("households", "户"),
    # report
    "report_title": ("fupin_sim report: {name}", "fupin_sim 报告:{name}"),
    "kind_run": ("Scenario run", "情景模拟"), "kind_compare": ("Scenario comparison", "方案比较"),
    "kind_sweep": ("Parameter sweep", "参数扫描"), "kind_sensitivity": ("Sensitivity analysis", "敏感性分析"),
    "kind_calibrate": ("Calibration", "模型校准"), "kind_forecast": ("Relapse-risk forecast", "返贫风险预测"),
    "kind_backtest": ("Forecast backtest", "预测回测"),
    "about": ("About this result", "关于本结果"), "scenario": ("Scenario", "情景"), "seed": ("Seed", "随机种子"),
    "version": ("fupin_sim version", "fupin_sim 版本"), "years": ("Years", "年份"),
    "households_simulated": ("Households simulated", "模拟户数"), "replicates": ("Replicates", "重复次数"),
    "instrument_scale": ("Instrument budgets scaled", "政策工具预算倍数"),
    "created": ("Folder", "结果目录"), "population_origin": ("Population", "人口来源"),
    "assumptions": ("Main assumptions and their sources", "主要假设及来源"),
    "assumptions_note": ("Parameters that drive the results most, and every parameter this scenario changed "
                         "from the defaults. The full list is in the workbook.",
                         "对结果影响最大的参数,以及本情景相对默认值修改的全部参数。完整列表见工作簿。"),
    "figures": ("Figures", "图表"), "tables": ("Tables", "表格"),
    "headline": ("Headline figures", "主要结果"),
    "rows_shown": ("First {shown} of {total} rows; all rows are in the workbook.", "仅显示前{shown}行(共{total}行),完整数据见工作簿。"),
    "font_missing": ("Chinese figure labels need a CJK font and none was found, so figures are in English. "
                     "Install one, e.g. `apt-get install fonts-noto-cjk` (Debian/Ubuntu) or "
                     "`dnf install google-noto-sans-cjk-fonts` (Fedora); Windows and macOS fonts "
                     "(Microsoft YaHei, PingFang SC) are found automatically.",
                     "图中中文需要CJK字体,但未找到,故图表使用英文。请安装字体,例如 Debian/Ubuntu:"
                     "`apt-get install fonts-noto-cjk`;Windows 和 macOS 的字体(微软雅黑、苹方)会自动识别。"),
    "sheet_about": ("About", "说明"),
    "field": ("Field", "项目"),
    "changed": ("changed by the scenario", "本情景修改"),
    "default": ("default", "默认值"),
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[LANGUAGES.index(lang)]


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    return lang


def text(key: str, lang: str = "en", **values) -> str:
    """A title or sentence; `values` fill its {placeholders}."""
    return _pick(TEXT[key], check_language(lang)).format(**values)


def table_title(name: str, lang: str = "en") -> str:
    """The heading of a table or workbook sheet."""
    return _pick(TABLES[name], check_language(lang)) if name in TABLES else label(name, lang)


def label(name: str, lang: str = "en") -> str:
    """The readable name of a metric, column, instrument, funding source or category."""
    check_language(lang)
    for table in (CATEGORIES, INSTRUMENTS, FUNDING_SOURCES, COLUMNS, TABLES):
        if name in table:
            return _pick(table[name], lang)
    found = METRICS.match(name)
    if found is not None:
        metric, fields = found
        named = {key: label(value, lang) for key, value in fields.items()}
        if all(named[key] != value for key, value in fields.items()):  # served_<instrument>: a known instrument
            return _pick((metric.en, metric.zh), lang).format(**named)
    prefix = "instrument_scale."  # a sweep's factor on an instrument's budget
    if name.startswith(prefix) and name[len(prefix):] in INSTRUMENTS:
        return _pick(("{}: budget ×", "{}预算倍数"), lang).format(label(name[len(prefix):], lang))
    base, _, how = name.rpartition("_")
    if base in METRICS and (how in AGGREGATIONS or how.isdigit()) and label(base, lang) != base:
        when = how if how.isdigit() else _pick(AGGREGATIONS[how], lang)  # sweep outputs: exits_sum, ..._2018
        return f"{label(base, lang)}, {when}" if lang == "en" else f"{label(base, lang)}({when})"
    return name
