"""Governance as code under deploy/: IAM policies, Unity Catalog storage and grants (no Spark).

The IAM JSON is checked as policy documents (trust condition, no wildcards, S3 scope), the SQL by
parsing its GRANT / CREATE EXTERNAL LOCATION / MANAGED LOCATION statements.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from itertools import permutations
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UC = DEPLOY / "unity_catalog"
TRUST_POLICY = DEPLOY / "aws" / "uc_role_trust_policy.json"
S3_POLICY = DEPLOY / "aws" / "uc_s3_access_policy.json"
STORAGE_CREDENTIAL = UC / "storage_credential.json"

BUCKET = "<LAKEHOUSE_BUCKET>"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
PREFIX_URL = f"s3://{BUCKET}/nyc911/"
ROLE_ARN = "arn:aws:iam::<AWS_ACCOUNT_ID>:role/nyc911-uc-access"
# Databricks' Unity Catalog master role (AWS commercial), as given in the Databricks docs. Its
# account id is the only 12-digit number allowed in the repository's deployment files.
UC_MASTER_ROLE = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL"
ENGINEERS, ANALYSTS = "nyc911_engineers", "nyc911_analysts"

EXPECTED_FILES = [
    "README.md",
    "aws/uc_role_trust_policy.json",
    "aws/uc_s3_access_policy.json",
    "unity_catalog/01_catalog_and_schemas.sql",
    "unity_catalog/02_storage_credential_and_external_locations.sql",
    "unity_catalog/03_grants.sql",
    "unity_catalog/storage_credential.json",
]
EXTERNAL_LOCATIONS = {
    "nyc911_catalog_root": f"{PREFIX_URL}catalog/",
    "nyc911_bronze": f"{PREFIX_URL}bronze/",
    "nyc911_silver": f"{PREFIX_URL}silver/",
    "nyc911_gold": f"{PREFIX_URL}gold/",
    "nyc911_dev_root": f"{PREFIX_URL}dev/",
}
MANAGED_LOCATIONS = {
    "nyc911": EXTERNAL_LOCATIONS["nyc911_catalog_root"],
    "nyc911.bronze": EXTERNAL_LOCATIONS["nyc911_bronze"],
    "nyc911.silver": EXTERNAL_LOCATIONS["nyc911_silver"],
    "nyc911.gold": EXTERNAL_LOCATIONS["nyc911_gold"],
    "nyc911_dev": EXTERNAL_LOCATIONS["nyc911_dev_root"],
}
ANALYST_GRANTS = {
    ("USE CATALOG", "CATALOG", "nyc911"),
    ("USE SCHEMA", "SCHEMA", "nyc911.gold"),
    ("SELECT", "SCHEMA", "nyc911.gold"),
}

SECURABLES = "CATALOG|SCHEMA|TABLE|VIEW|VOLUME|FUNCTION|EXTERNAL LOCATION|STORAGE CREDENTIAL|METASTORE"
GRANT = re.compile(rf"^GRANT (?P<privs>.+?) ON (?P<kind>{SECURABLES}) (?P<obj>\S+) TO (?P<who>.+)$", re.I)
REVOKE = re.compile(rf"^REVOKE (?P<privs>.+?) ON (?P<kind>{SECURABLES}) (?P<obj>\S+) FROM (?P<who>.+)$", re.I)
EXTERNAL_LOCATION = re.compile(
    r"^CREATE EXTERNAL LOCATION (?:IF NOT EXISTS )?(?P<name>\w+) URL '(?P<url>[^']+)'"
    r" WITH \(STORAGE CREDENTIAL (?P<credential>\w+)\)",
    re.I,
)
CREATE_WITH_LOCATION = re.compile(
    r"^CREATE (?:CATALOG|SCHEMA) (?:IF NOT EXISTS )?(?P<name>[\w.]+)\b.*?"
    r"\bMANAGED LOCATION '(?P<url>[^']+)'",
    re.I,
)
CREATE_SCHEMA = re.compile(r"^CREATE SCHEMA (?:IF NOT EXISTS )?([\w.]+)", re.I)
ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


class Grant(NamedTuple):
    principal: str
    privilege: str
    kind: str
    obj: str


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements() -> list[tuple[str, dict[str, Any]]]:
    """(file:Sid, statement) of every IAM policy document under deploy/."""
    found = []
    for path in sorted(DEPLOY.rglob("*.json")):
        doc = load_json(path)
        for i, stmt in enumerate(as_list(doc.get("Statement", []))):
            found.append((f"{path.relative_to(DEPLOY)}:{stmt.get('Sid', i)}", stmt))
    return found


def sql_statements(path: Path) -> list[str]:
    """The statements of a SQL file: `--` comments dropped, whitespace collapsed."""
    text = "\n".join(line.split("--", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return [" ".join(stmt.split()) for stmt in text.split(";") if stmt.strip()]


def all_sql_statements() -> list[str]:
    return [stmt for path in sorted(DEPLOY.rglob("*.sql")) for stmt in sql_statements(path)]


def parse_privileges(match: re.Match[str]) -> list[Grant]:
    who = match["who"].strip().strip("`")
    kind, obj = " ".join(match["kind"].upper().split()), match["obj"].replace("`", "")
    return [Grant(who, " ".join(p.upper().split()), kind, obj) for p in match["privs"].split(",")]


def grants(statements: list[str]) -> set[Grant]:
    """Every GRANT, one entry per privilege; a GRANT the parser cannot read fails the test."""
    found: set[Grant] = set()
    for stmt in statements:
        if stmt.upper().startswith("GRANT "):
            match = GRANT.match(stmt)
            assert match, f"unparsed GRANT: {stmt}"
            found.update(parse_privileges(match))
    return found


def revokes(statements: list[str]) -> set[Grant]:
    found: set[Grant] = set()
    for stmt in statements:
        if stmt.upper().startswith("REVOKE "):
            match = REVOKE.match(stmt)
            assert match, f"unparsed REVOKE: {stmt}"
            found.update(parse_privileges(match))
    return found


def external_locations() -> dict[str, tuple[str, str]]:
    found = {}
    for stmt in sql_statements(UC / "02_storage_credential_and_external_locations.sql"):
        if stmt.upper().startswith("CREATE EXTERNAL LOCATION"):
            match = EXTERNAL_LOCATION.match(stmt)
            assert match, f"unparsed external location: {stmt}"
            found[match["name"]] = (match["url"], match["credential"])
    return found


def params_layers() -> dict[str, str]:
    data = yaml.safe_load((REPO / "params" / "default.yaml").read_text(encoding="utf-8"))
    return data["environments"]["databricks"]["schemas"]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", EXPECTED_FILES)
def test_deploy_file_exists(name):
    assert (DEPLOY / name).is_file()


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.json")), ids=lambda p: p.relative_to(DEPLOY).as_posix()
)
def test_json_parses(path):
    assert isinstance(load_json(path), dict)


# --------------------------------------------------------------------------- IAM


def test_trust_policy_requires_the_external_id():
    doc = load_json(TRUST_POLICY)
    assert doc["Version"] == "2012-10-17"
    [stmt] = doc["Statement"]
    assert stmt["Effect"] == "Allow"
    assert as_list(stmt["Action"]) == ["sts:AssumeRole"]
    # Databricks' UC master role, and the role itself (self-assumption, required by Databricks).
    assert sorted(as_list(stmt["Principal"]["AWS"])) == sorted([UC_MASTER_ROLE, ROLE_ARN])
    assert set(stmt["Principal"]) == {"AWS"}
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": "<DATABRICKS_ACCOUNT_ID>"}}


def test_s3_access_policy_is_least_privilege():
    doc = load_json(S3_POLICY)
    assert doc["Version"] == "2012-10-17"
    assert all(stmt["Effect"] == "Allow" for stmt in doc["Statement"])
    actual = {
        frozenset(as_list(stmt["Action"])): (as_list(stmt["Resource"]), stmt.get("Condition"))
        for stmt in doc["Statement"]
    }
    assert actual == {
        frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}): ([f"{BUCKET_ARN}/nyc911/*"], None),
        frozenset({"s3:ListBucket"}): ([BUCKET_ARN], {"StringLike": {"s3:prefix": ["nyc911/*"]}}),
        frozenset({"s3:GetBucketLocation"}): ([BUCKET_ARN], None),
        frozenset({"sts:AssumeRole"}): ([ROLE_ARN], None),
    }


@pytest.mark.parametrize(("where", "stmt"), policy_statements(), ids=[w for w, _ in policy_statements()])
def test_statement_has_no_wildcard_action_or_resource(where, stmt):
    assert "NotAction" not in stmt and "NotResource" not in stmt, where
    for action in as_list(stmt.get("Action", [])):
        assert action != "*" and not action.endswith(":*"), f"{where}: action {action}"
    for resource in as_list(stmt.get("Resource", [])):
        assert resource != "*", f"{where}: resource *"


@pytest.mark.parametrize(("where", "stmt"), policy_statements(), ids=[w for w, _ in policy_statements()])
def test_s3_resources_are_under_the_lakehouse_bucket(where, stmt):
    for resource in as_list(stmt.get("Resource", [])):
        if resource.startswith("arn:aws:s3:::"):
            in_scope = resource == BUCKET_ARN or resource.startswith(f"{BUCKET_ARN}/nyc911/")
            assert in_scope, f"{where}: {resource}"


def test_storage_credential_is_bound_to_the_role():
    credential = load_json(STORAGE_CREDENTIAL)
    assert credential["name"] == "nyc911_uc_access"
    assert credential["aws_iam_role"] == {"role_arn": ROLE_ARN}


# --------------------------------------------------------------------------- grants


def test_analysts_get_exactly_use_and_select_on_gold():
    given = {(g.privilege, g.kind, g.obj) for g in grants(all_sql_statements()) if g.principal == ANALYSTS}
    assert given == ANALYST_GRANTS


@pytest.mark.parametrize("layer", ["bronze", "silver"])
def test_analysts_get_nothing_on_bronze_or_silver(layer):
    schema = f"nyc911.{params_layers()[layer]}"
    given = [g for g in grants(all_sql_statements()) if g.principal == ANALYSTS]
    assert [g for g in given if g.obj == schema or g.obj.startswith(f"{schema}.")] == []
    # ... and any hand-made schema grant is revoked when the file is re-applied.
    assert Grant(ANALYSTS, "ALL PRIVILEGES", "SCHEMA", schema) in revokes(all_sql_statements())


@pytest.mark.parametrize("catalog", ["nyc911", "nyc911_dev"])
def test_engineers_manage_every_layer(catalog):
    assert Grant(ENGINEERS, "ALL PRIVILEGES", "CATALOG", catalog) in grants(all_sql_statements())
    created = {m[1] for s in all_sql_statements() if (m := CREATE_SCHEMA.match(s))}
    assert {f"{catalog}.{schema}" for schema in params_layers().values()} <= created


def test_only_the_two_groups_are_granted_anything():
    assert {g.principal for g in grants(all_sql_statements())} == {ENGINEERS, ANALYSTS}


# --------------------------------------------------------------------------- storage


def test_one_external_location_per_layer_prefix_and_root():
    credential = load_json(STORAGE_CREDENTIAL)["name"]
    assert external_locations() == {name: (url, credential) for name, url in EXTERNAL_LOCATIONS.items()}


def test_external_locations_do_not_overlap():
    """Unity Catalog rejects an external location inside another one."""
    urls = [url for url, _ in external_locations().values()]
    assert len(urls) == len(EXTERNAL_LOCATIONS)
    assert [(a, b) for a, b in permutations(urls, 2) if b.startswith(a)] == []


@pytest.mark.parametrize("url", EXTERNAL_LOCATIONS.values())
def test_external_location_is_inside_the_iam_policy_scope(url):
    """Unity Catalog can list and read/write every location with the role's policy."""
    assert url.startswith(PREFIX_URL) and url.endswith("/")
    key = url.removeprefix(f"s3://{BUCKET}/")
    scope = {frozenset(as_list(s["Action"])): s for s in load_json(S3_POLICY)["Statement"]}
    [objects] = as_list(scope[frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject"})]["Resource"])
    assert fnmatchcase(f"{BUCKET_ARN}/{key}part-00000.parquet", objects)
    [prefix] = scope[frozenset({"s3:ListBucket"})]["Condition"]["StringLike"]["s3:prefix"]
    assert fnmatchcase(key, prefix)


def test_managed_locations_use_the_external_locations():
    found = {}
    for stmt in sql_statements(UC / "01_catalog_and_schemas.sql"):
        if match := CREATE_WITH_LOCATION.match(stmt):
            found[match["name"]] = match["url"]
    assert found == MANAGED_LOCATIONS


# --------------------------------------------------------------------------- account ids


def deployment_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    files += [REPO / "databricks.yml", *(REPO / "resources").glob("*.yml")]
    files += (REPO / "dashboards").glob("*.json")
    return sorted(files)


@pytest.mark.parametrize("path", deployment_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_real_looking_account_id(path):
    text = path.read_text(encoding="utf-8").replace(UC_MASTER_ROLE, "")
    assert ACCOUNT_ID.findall(text) == [], "use <AWS_ACCOUNT_ID> / <DATABRICKS_ACCOUNT_ID> placeholders"
