"""No credentials in the repository: every tracked or addable file, notebook outputs included.

The file list is git's: tracked files plus untracked files that are not ignored (what `git add -A`
would pick up). Findings are reported as file:line and the kind of secret, never the value.
The planted samples in the unit tests are assembled at runtime, so this file never matches itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]

# Characters that mark a placeholder or a reference rather than a value: <PLACEHOLDER>, ${VAR},
# {{template}}, *** (redacted). Password-in-URL matching stops at them.
_NOT_A_VALUE = r"\s/@'\"<>$\{\}*"

PATTERNS: dict[str, re.Pattern[str]] = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
    ),
    "Databricks token": re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{82}\b"),
    # Socrata (NYC Open Data) app tokens: assigned in code/config, sent as a header or in the URL.
    "Socrata app token": re.compile(
        r"(?i)(?:x-app-token|\$\$app_token|app_?token)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9]{20,}\b"
    ),
    "password in URL": re.compile(rf"\b[a-z][a-z0-9+.-]*://[^{_NOT_A_VALUE}:]+:[^{_NOT_A_VALUE}]+@"),
}


class Finding(NamedTuple):
    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


def scan_text(text: str, path: str) -> list[Finding]:
    """Every secret-like match in `text`, as (path, 1-based line, kind)."""
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in PATTERNS.items():
            if pattern.search(line):
                findings.append(Finding(path, number, kind))
    return findings


def repo_files() -> list[Path]:
    """Tracked files plus untracked, not-ignored ones, as git lists them."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    names = sorted({name for name in result.stdout.decode("utf-8").split("\0") if name})
    return [REPO / name for name in names if (REPO / name).is_file()]


def scan_file(path: Path, root: Path = REPO) -> list[Finding]:
    """Every secret-like match in the file at `path`, named relative to `root`."""
    # Bytes decoded leniently: .ipynb outputs, CSV fixtures and binaries are all scanned.
    text = path.read_bytes().decode("utf-8", errors="ignore")
    return scan_text(text, path.relative_to(root).as_posix())


# --------------------------------------------------------------------------- the repository


def test_scanner_sees_the_repository():
    names = {p.relative_to(REPO).as_posix() for p in repo_files()}
    assert {"databricks.yml", "params/default.yaml", "tests/test_no_secrets.py"} <= names
    assert not [n for n in names if n.startswith((".venv/", ".git/"))]


def test_repository_has_no_secrets():
    findings = [finding for path in repo_files() for finding in scan_file(path)]
    assert not findings, "possible secrets (remove them and rotate the credential):\n" + "\n".join(
        map(str, findings)
    )


# --------------------------------------------------------------------------- the scanner itself


def planted_samples() -> list[tuple[str, str]]:
    """(kind, line) with one fake secret each, concatenated so this file holds no match."""
    return [
        ("AWS access key id", "key_id = " + "AK" + "IA" + "QXZ7" * 4),
        ("AWS access key id", "aws_session: " + "AS" + "IA" + "7" * 16),
        ("AWS secret access key", "aws_secret_access_key" + " = " + "wJalrX" + "Ut9" * 11 + "EXAMPLEKEY"[:1]),
        ("AWS secret access key", '"aws_secret_access_key' + '": "' + "abcd/EFGH+" * 4 + '"'),
        ("Databricks token", "DATABRICKS_TOKEN=" + "da" + "pi" + "0123456789abcdef" * 2),
        ("private key", "-----BEGIN " + "RSA PRIVATE" + " KEY-----"),
        ("private key", '"-----BEGIN ' + "OPENSSH PRIVATE" + ' KEY-----\\n",'),  # inside an .ipynb output
        ("GitHub token", "token: " + "gh" + "p_" + "A1b2" * 9),
        ("Socrata app token", "X-App-" + "Token: " + "a1B2c3D4e5" * 2 + "F6g7h"),
        ("Socrata app token", "SOCRATA_APP_" + "TOKEN = '" + "Zz9Yy8Xx7W" * 2 + "w6v5u'"),
        ("Socrata app token", "/resource/t7p9-n9dy.csv?$$app_" + "token=" + "Q" * 25),
        ("password in URL", "postgresql://" + "etl_user:" + "s3cr3t-Pa55" + "@db.example.com:5432/nyc911"),
        ("password in URL", "https://" + "alice:" + "hunter2" + "@example.com/export.csv"),
    ]


@pytest.mark.parametrize(
    ("kind", "line"), planted_samples(), ids=[f"{k}-{i}" for i, (k, _) in enumerate(planted_samples())]
)
def test_scanner_catches_planted_sample(kind, line):
    text = "first line\n" + line + "\nlast line\n"
    assert scan_text(text, "planted.txt") == [Finding("planted.txt", 2, kind)]


@pytest.mark.parametrize(
    "line",
    [
        "arn:aws:iam::<AWS_ACCOUNT_ID>:role/nyc911-uc-access",
        '"sts:ExternalId": "<DATABRICKS_ACCOUNT_ID>"',
        "aws_secret_access_key = <AWS_SECRET_ACCESS_KEY>",
        "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}",
        "DATABRICKS_TOKEN=<DATABRICKS_TOKEN>",
        "export DATABRICKS_HOST=https://<your-workspace>.cloud.databricks.com",
        "https://<USER>:<PASSWORD>@<HOST>/db",
        "postgresql://${DB_USER}:${DB_PASSWORD}@db:5432/nyc911",
        "https://user:***@example.com",
        "https://user@example.com/no-password",
        "X-App-Token: <SOCRATA_APP_TOKEN>",
        "app_token: str | None = None",
        "-----BEGIN PUBLIC KEY-----",
        "ghp_<GITHUB_TOKEN>",
        "s3://<LAKEHOUSE_BUCKET>/nyc911/bronze/",
    ],
)
def test_scanner_ignores_placeholders(line):
    assert scan_text(line, "placeholder.txt") == []


def test_findings_name_file_and_line_only():
    secret_line = "token = " + "da" + "pi" + "f" * 32
    findings = scan_text("a\nb\n" + secret_line + "\n", "conf/app.env")
    assert [str(f) for f in findings] == ["conf/app.env:3: Databricks token"]
    assert "f" * 32 not in str(findings[0])
