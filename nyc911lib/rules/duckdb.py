"""The duckdb engine's allowlist of rule constructs: each operator and function below gives
Spark's result on DuckDB (verified on both engines by tests/test_quality.py); any other node of a
condition is refused with one line naming the rule, the construct and what to do."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from nyc911lib.config import QualityRule
from nyc911lib.errors import QualityRuleError
from nyc911lib.rules.allowlist import (
    COMPARABLE,
    DATE_LITERAL,
    DESCRIBED,
    SPARK,
    TRUNC_UNITS,
    value_kind,
)


class DuckDBCheck:
    """The duckdb engine's allowlist for one rule: `kind` gives the kind of value an allowed node
    gives (checking its arguments), and refuses any other node with the rule's one-line error."""

    def __init__(self, exp: Any, rule: QualityRule, columns: Mapping[str, str]) -> None:
        self.exp, self.rule = exp, rule
        self.types = {name.lower(): kind for name, kind in columns.items()}
        e = exp
        comparisons = (e.EQ, e.NEQ, e.GT, e.GTE, e.LT, e.LTE, e.NullSafeEQ, e.NullSafeNEQ)
        of_a_date = (e.Year, e.Month, e.Day, e.DayOfMonth, e.DayOfYear, e.WeekOfYear, e.Quarter)
        # (node classes, the child expressions they may have, the kind of value they give)
        self.allowed: list[tuple[Any, set[str] | None, Callable[[Any], str]]] = [
            (e.Paren, {"this"}, lambda n: self.kind(n.this)),
            (e.Column, None, self._column),
            (e.Null, set(), lambda n: "null"),
            (e.Boolean, set(), lambda n: "boolean"),
            (e.Literal, set(), lambda n: "string" if n.is_string else "number"),
            (e.Concat, {"expressions"}, self._adjacent_literals),
            (e.Cast, {"this", "to"}, self._typed_literal),  # TryCast too
            (comparisons, {"this", "expression"}, lambda n: self._compare(n, n.this, n.expression)),
            (
                e.Between,
                {"this", "low", "high"},
                lambda n: self._compare(n, n.this, n.args["low"], n.args["high"]),
            ),
            (e.In, {"this", "expressions"}, lambda n: self._compare(n, n.this, *n.expressions)),
            ((e.And, e.Or), {"this", "expression"}, lambda n: self._take(n, "boolean", n.this, n.expression)),
            (e.Not, {"this"}, lambda n: self._take(n, "boolean", n.this)),
            (e.Is, {"this", "expression"}, self._is),
            (e.Like, {"this", "expression"}, self._like),
            (
                (e.Add, e.Sub, e.Mul),
                {"this", "expression"},
                lambda n: self._take(n, "number", n.this, n.expression),
            ),
            (e.Neg, {"this"}, lambda n: self._take(n, "number", n.this)),
            (e.Case, {"this", "ifs", "default"}, self._case),
            (e.If, {"this", "true", "false"}, self._if),
            (
                (e.Coalesce, e.Greatest, e.Least),
                {"this", "expressions"},
                lambda n: self._one_kind(n, n.this, *n.expressions),
            ),
            (e.Nullif, {"this", "expression"}, lambda n: self._one_kind(n, n.this, n.expression)),
            (e.Abs, {"this"}, lambda n: self._take(n, "number", n.this)),
            (e.Round, {"this", "decimals"}, self._round),
            (e.ArraySize, {"this"}, lambda n: self._gives("number", self._take(n, "array<string>", n.this))),
            (e.ArrayContains, {"this", "expression"}, self._array_contains),
            (e.DateTrunc, {"this", "unit"}, self._trunc),
            (
                of_a_date,
                {"this"},
                lambda n: self._gives("number", self._take(n, "date", self._date_of(n.this))),
            ),
            (e.DateDiff, {"this", "expression"}, self._datediff),
            ((e.TsOrDsAdd, e.AddMonths), {"this", "expression", "unit"}, self._add),
            (e.LastDay, {"this"}, lambda n: self._take(n, "date", n.this)),
            (e.Length, {"this"}, lambda n: self._gives("number", self._take(n, "string", n.this))),
            (e.Trim, {"this"}, lambda n: self._take(n, "string", n.this)),
            ((e.StartsWith, e.EndsWith, e.Contains), {"this", "expression"}, self._text_test),
        ]

    def condition(self, tree: Any) -> None:
        """Check a whole condition: allowed nodes only, and true/false (or NULL) as its value."""
        kind = self.kind(tree)
        if kind not in ("boolean", "null", "any"):
            raise self._error(
                f"has a condition that gives {DESCRIBED[kind]}, not true/false: write a test such as "
                f"`{tree.sql('spark')} > 0` or `{tree.sql('spark')} IS NOT NULL`"
            )

    def kind(self, node: Any) -> str:
        """The kind of value `node` gives, once its arguments are checked; refuses unlisted nodes."""
        for classes, children, kind_of in self.allowed:
            if isinstance(node, classes):
                if children is not None and not self._children(node) <= children:
                    break
                return kind_of(node)
        raise self._unlisted(node)

    def _children(self, node: Any) -> set[str]:
        return {
            key
            for key, value in node.args.items()
            if not key.startswith("_") and value and isinstance(value, (self.exp.Expression, list))
        }

    # --- refusals --------------------------------------------------------------------------------

    def _error(self, text: str) -> QualityRuleError:
        return QualityRuleError(f"quality rule '{self.rule.name}' {text}")

    def _differs(self, construct: str, why: str, hint: str) -> QualityRuleError:
        return self._error(
            f"uses {construct}, which the duckdb engine evaluates differently from Spark ({why}): "
            f"{hint}, {SPARK}"
        )

    def _name(self, node: Any) -> str:
        """How a message names a construct: `dayofweek()`, `the / operator`, `RLIKE`."""
        e = self.exp
        operators = (
            (e.Div, "the / operator"),
            (e.Mod, "the % operator"),
            (e.IntDiv, "div"),
            (e.RegexpLike, "RLIKE"),
            (e.ILike, "ILIKE"),
            (e.Like, "LIKE"),
            (e.Escape, "LIKE ... ESCAPE"),
            (e.Interval, "INTERVAL"),
            (e.Bracket, "[...] subscripts"),
            (e.Window, "a window (OVER)"),
            (e.Subquery, "a subquery"),
            (e.Add, "the + operator"),
            (e.Sub, "the - operator"),
            (e.Mul, "the * operator"),
            (e.Neg, "unary -"),
            (e.Not, "NOT"),
            (e.And, "AND"),
            (e.Or, "OR"),
            (e.Is, "IS"),
            (e.Between, "BETWEEN"),
            (e.Case, "CASE"),
        )
        if isinstance(node, e.In):
            return "IN (SELECT ...)" if node.args.get("query") else "IN"
        for cls, name in operators:
            if isinstance(node, cls):
                return name
        if isinstance(node, e.Anonymous):
            return f"{node.name.lower()}()"
        if isinstance(node, e.TsOrDsAdd) and self._negated(node.expression) is not None:
            return "date_sub()"
        match = re.match(r"([A-Za-z_][A-Za-z_0-9]*)(\(|$)", node.sql("spark"))
        return (
            f"{match.group(1).lower()}()" if isinstance(node, e.Func) and match else f"`{node.sql('spark')}`"
        )

    def _unlisted(self, node: Any) -> QualityRuleError:  # noqa: PLR0911 - one hint per known trap
        e, name = self.exp, self._name(node)
        inner = node.this.this if isinstance(node.this, e.TsOrDsToDate) else node.this  # year(to_date(x))
        arguments = node.expressions if isinstance(node, e.Anonymous) else [inner]
        first = arguments[0].sql("spark") if arguments and isinstance(arguments[0], e.Expression) else "x"
        if isinstance(node, e.DayOfWeek) or name == "weekday()":
            monday = 2 if isinstance(node, e.DayOfWeek) else 0
            return self._differs(
                name, f"Monday = 1 there, {monday} on Spark", f"use trunc({first}, 'week') = {first}"
            )
        if isinstance(node, e.Div):
            return self._differs(
                name,
                "a zero divisor gives NULL there and stops the run on Spark",
                "multiply instead (a > 2 * b rather than a / b > 2)",
            )
        if isinstance(node, (e.Lower, e.Upper)):
            return self._differs(
                name,
                "non-ASCII letters change differently: upper('ß') is 'ẞ' there, 'SS' on Spark",
                "compare with each spelling, e.g. agency IN ('EMS', 'ems')",
            )
        if isinstance(node, (e.Floor, e.Ceil)):
            return self._differs(
                name,
                "a double there, a bigint on Spark, which caps values beyond 2^63",
                "compare the value itself (x >= 3 rather than floor(x) >= 3)",
            )
        if isinstance(node, e.Substring):
            return self._differs(
                name,
                "a start position of 0 counts as a character there, Spark reads it as 1",
                "use startswith(), endswith() or contains()",
            )
        if isinstance(node, e.Round):
            return self._differs(
                "round() to decimal digits",
                "round(2.675, 2) is 2.67 there, 2.68 on Spark",
                "compare unrounded values, or round to a whole number with round(x)",
            )
        if isinstance(node, e.Cast):
            return self._differs(
                name,
                "cast(2.7 AS bigint) is 3 there, 2 on Spark, and a value that does not convert gives "
                "NULL there but stops the run on Spark",
                "compare the typed silver columns directly, with DATE 'yyyy-mm-dd' for a date",
            )
        if isinstance(node, (e.RegexpLike, e.RegexpExtract, e.RegexpReplace)) or name.startswith("regexp"):
            return self._differs(
                name,
                "RE2 regular expressions there, Java's on Spark",
                "use LIKE, IN, startswith(), endswith() or contains()",
            )
        if name in ("isnull()", "isnotnull()"):
            test = "IS NULL" if name == "isnull()" else "IS NOT NULL"
            return self._error(
                f"uses {name}, which the duckdb engine does not have: write {first} {test}, {SPARK}"
            )
        if isinstance(node, (e.CurrentDate, e.CurrentTimestamp, e.Rand)):
            return self._error(
                f"uses {name}, whose value depends on when the run happens: compare with a literal such as "
                f"DATE '2024-01-01', {SPARK}"
            )
        return self._error(
            f"uses {name}, which the duckdb engine is not verified to evaluate as Spark does: use the "
            f"operators and functions listed in params/quality_rules.yaml, {SPARK}"
        )

    def _mismatch(self, node: Any, got: str, part: Any, expected: str) -> QualityRuleError:
        return self._error(
            f"gives {self._name(node)} {DESCRIBED[got]} (`{part.sql('spark')}`) where it takes "
            f"{DESCRIBED[expected]}, which the duckdb engine does not convert as Spark does: give it "
            f"{DESCRIBED[expected]}, {SPARK}"
        )

    # --- kinds of values -------------------------------------------------------------------------

    @staticmethod
    def _gives(kind: str, _checked: str) -> str:
        return kind

    def _take(self, node: Any, expected: str, *parts: Any) -> str:
        """`node` takes `expected` in each of `parts` (NULL too); it gives that kind."""
        for part in parts:
            got = self.kind(part)
            if got not in (expected, "null", "any"):
                raise self._mismatch(node, got, part, expected)
        return expected

    def _one_kind(self, node: Any, *parts: Any) -> str:
        """coalesce() and the like: every part of one kind (numbers of any type count as one)."""
        kinds = [(part, self.kind(part)) for part in parts if part is not None]
        typed = [(part, kind) for part, kind in kinds if kind not in ("null", "any")]
        for part, kind in typed[1:]:
            if kind != typed[0][1]:
                raise self._mismatch(node, kind, part, typed[0][1])
        if typed:
            return typed[0][1]
        return "any" if any(kind == "any" for _, kind in kinds) else "null"

    def _compare(self, node: Any, first: Any, *others: Any) -> str:
        left = (first, self.kind(first))
        for other in others:
            right = (other, self.kind(other))
            if not self._comparable(left, right):
                raise self._error(
                    f"compares {DESCRIBED[left[1]]} (`{first.sql('spark')}`) with {DESCRIBED[right[1]]} "
                    f"(`{other.sql('spark')}`), which the duckdb engine does not convert as Spark does: "
                    f"compare values of one kind (DATE 'yyyy-mm-dd' for a date), {SPARK}"
                )
        return "boolean"

    def _comparable(self, left: tuple[Any, str], right: tuple[Any, str]) -> bool:
        kinds = {left[1], right[1]} - {"null", "any"}
        if len(kinds) <= 1:
            return kinds <= set(COMPARABLE)
        # A number or a date against a text literal: both engines convert the literal alike.
        return any(
            isinstance(node, self.exp.Literal) and node.is_string and other[1] in ("number", "date")
            for node, other in ((left[0], right), (right[0], left))
        )

    def _column(self, node: Any) -> str:
        parts = [part.name.lower() for part in node.parts]
        kind = self.types.get(parts[0], "")
        return "string" if len(parts) > 1 else value_kind(kind)  # a field of _raw: the source text

    def _adjacent_literals(self, node: Any) -> str:
        """'it''s' parses as the adjacent literals 'it' 's', which Spark joins: 'its'."""
        if all(isinstance(part, self.exp.Literal) and part.is_string for part in node.expressions):
            return "string"
        raise self._unlisted(node)

    def _typed_literal(self, node: Any) -> str:
        """Casts: only the typed literals DATE 'yyyy-mm-dd', 1.5D (double) and 10L (bigint)."""
        e, value, to = self.exp, node.this, node.args["to"].this
        is_text = isinstance(value, e.Literal) and value.is_string
        if is_text and to == e.DataType.Type.DATE:
            if DATE_LITERAL.match(value.this):
                return "date"
            raise self._error(
                f"uses DATE '{value.this}', which is not written yyyy-mm-dd, the form both engines read "
                f"alike: write it as DATE '2024-01-05', {SPARK}"
            )
        number = isinstance(value, e.Literal) and not is_text
        if number and (
            to == e.DataType.Type.DOUBLE or (to == e.DataType.Type.BIGINT and value.this.isdigit())
        ):
            return "number"
        raise self._unlisted(node)

    def _is(self, node: Any) -> str:
        if isinstance(node.expression, self.exp.Null):
            self.kind(node.this)
            return "boolean"
        if isinstance(node.expression, self.exp.Boolean):
            return self._take(node, "boolean", node.this)
        raise self._unlisted(node)

    def _like(self, node: Any) -> str:
        pattern = node.expression
        if not (isinstance(pattern, self.exp.Literal) and pattern.is_string):
            raise self._error(
                f"uses LIKE with a pattern that is not a text literal (`{pattern.sql('spark')}`), which the "
                "duckdb engine is not verified to evaluate as Spark does: write the pattern as 'text%', "
                f"{SPARK}"
            )
        if "\\" in pattern.this:
            raise self._differs(
                "LIKE with a backslash in its pattern",
                "the backslash is an ordinary character there, an escape on Spark",
                "match the character with _ instead",
            )
        return self._gives("boolean", self._take(node, "string", node.this))

    def _case(self, node: Any) -> str:
        branches = node.args.get("ifs") or []
        for branch in branches:
            if node.this is not None:  # CASE x WHEN value THEN ...
                self._compare(node, node.this, branch.this)
            else:
                self._take(node, "boolean", branch.this)
        return self._one_kind(node, *[branch.args["true"] for branch in branches], node.args.get("default"))

    def _if(self, node: Any) -> str:
        self._take(node, "boolean", node.this)
        return self._one_kind(node, node.args["true"], node.args.get("false"))

    def _round(self, node: Any) -> str:
        digits = node.args.get("decimals")
        if digits is not None and not (isinstance(digits, self.exp.Literal) and digits.this == "0"):
            raise self._unlisted(node)
        return self._take(node, "number", node.this)

    def _array_contains(self, node: Any) -> str:
        self._take(node, "array<string>", node.this)
        return self._gives("boolean", self._take(node, "string", node.expression))

    def _date_of(self, argument: Any) -> Any:
        """year(x), datediff(x, y) and the like parse as year(to_date(x)): the date is x."""
        if isinstance(argument, self.exp.TsOrDsToDate):
            if argument.args.get("format") is not None:
                raise self._unlisted(argument)
            return argument.this
        return argument

    def _trunc(self, node: Any) -> str:
        unit = node.args["unit"]
        text = unit.name.upper() if isinstance(unit, (self.exp.Literal, self.exp.Var)) else unit.sql("spark")
        if text not in TRUNC_UNITS:
            raise self._error(
                f"uses trunc() with unit '{text.lower()}', which the duckdb engine does not accept: write "
                f"'week', 'month', 'quarter' or 'year', {SPARK}"
            )
        return self._take(node, "date", node.this)

    def _datediff(self, node: Any) -> str:
        self._take(node, "date", self._date_of(node.this), self._date_of(node.expression))
        return "number"

    def _negated(self, count: Any) -> Any:
        """date_sub(d, n) parses as date_add(d, n * -1): n, else None."""
        e = self.exp
        if isinstance(count, e.Mul) and isinstance(count.expression, e.Neg):
            one = count.expression.this
            if isinstance(one, e.Literal) and one.this == "1":
                return count.this
        return None

    def _add(self, node: Any) -> str:
        """date_add, date_sub, add_months: a date and a whole-number literal count."""
        e, count = self.exp, node.expression
        unit = node.args.get("unit")
        if unit is not None and unit.name.upper() != "DAY":
            raise self._unlisted(node)
        count = self._negated(count) or count
        count = count.this if isinstance(count, e.Neg) else count
        if not (isinstance(count, e.Literal) and not count.is_string and count.this.isdigit()):
            raise self._error(
                f"uses {self._name(node)} with a count that is not a whole-number literal "
                f"(`{node.expression.sql('spark')}`), which the duckdb engine does not check as Spark does: "
                f"write the count as a number, e.g. date_add(week_start_date, 7), {SPARK}"
            )
        return self._take(node, "date", self._date_of(node.this))

    def _text_test(self, node: Any) -> str:
        return self._gives("boolean", self._take(node, "string", node.this, node.expression))
