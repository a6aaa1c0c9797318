"""Throw-away PKI for the test apiserver, made with the ``openssl`` command line tool."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Names and addresses the serving certificate is valid for (loopback + in-cluster names).
SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)
EC_CURVE = "prime256v1"


@dataclass(frozen=True)
class Pki:
    """Files of the generated PKI and the bearer tokens of the test users."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    tokens: dict[str, str]


def openssl_available() -> bool:
    """True when the ``openssl`` command is on PATH."""
    return shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    """Run one openssl command, raising with its stderr on failure."""
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _make_ca(folder: Path) -> None:
    """Create ``ca.key`` and a self-signed ``ca.crt`` valid for one day."""
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{EC_CURVE}", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=ladts-e2e-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=folder,
    )  # fmt: skip


def _make_serving_cert(folder: Path) -> None:
    """Create ``apiserver.key`` and ``apiserver.crt`` signed by the CA."""
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{EC_CURVE}", "-nodes",
        "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver",
        cwd=folder,
    )  # fmt: skip
    ext = folder / "apiserver.ext"
    ext.write_text(
        f"subjectAltName={','.join(SERVING_SANS)}\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        encoding="utf-8",
    )
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "apiserver.crt", "-days", "2", "-extfile", ext.name,
        cwd=folder,
    )  # fmt: skip


def _make_sa_keys(folder: Path) -> None:
    """Create the service-account signing key ``sa.key`` and its public key ``sa.pub``."""
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key",
        cwd=folder,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


def _write_tokens(folder: Path, users: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Write a static token file (``token,user,uid,"groups"``); return user -> token."""
    tokens = {user: secrets.token_hex(16) for user in users}
    lines = [f'{tokens[user]},{user},{user},"{",".join(groups)}"' for user, groups in users.items()]
    (folder / "tokens.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "tokens.csv").chmod(0o600)
    return tokens


#: Test identities: the admin (tests, kwok) and the scheduler's own bootstrap identity.
DEFAULT_USERS: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    "system:kube-scheduler": (),
}


def make_pki(folder: Path, users: dict[str, tuple[str, ...]] | None = None) -> Pki:
    """Generate CA, serving certificate, service-account keys and a token file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _make_ca(folder)
    _make_serving_cert(folder)
    _make_sa_keys(folder)
    tokens = _write_tokens(folder, users or DEFAULT_USERS)
    return Pki(
        ca_cert=folder / "ca.crt",
        serving_cert=folder / "apiserver.crt",
        serving_key=folder / "apiserver.key",
        sa_key=folder / "sa.key",
        sa_pub=folder / "sa.pub",
        token_file=folder / "tokens.csv",
        tokens=tokens,
    )
