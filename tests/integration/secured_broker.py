"""A real broker with a SASL (SCRAM and PLAIN) listener over TLS, and certificates made for it with openssl."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.services import BROKER

USER = "acw-worker"


@dataclass(frozen=True)
class SecuredBroker:
    """Where the secured broker listens and what a client needs to trust and log in to it."""

    plaintext: str  # for the tests' own reads and writes
    sasl_ssl: str
    password: str
    ca: Path
    rogue_ca: Path  # a CA that signed nothing the broker presents


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(cwd: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=ACW test {name}",
        cwd=cwd,
    )  # fmt: skip


def make_certificates(cwd: Path, store_password: str) -> None:
    """ca.crt, rogue-ca.crt, and broker.p12: a key and a certificate for 127.0.0.1 signed by ca."""
    _ca(cwd, "ca")
    _ca(cwd, "rogue-ca")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=cwd,
    )  # fmt: skip
    (cwd / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-out", "broker.crt", "-extfile", "broker.ext",
        cwd=cwd,
    )  # fmt: skip
    _openssl(
        "pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key", "-certfile", "ca.crt",
        "-name", "broker", "-out", "broker.p12", "-passout", f"pass:{store_password}",
        cwd=cwd,
    )  # fmt: skip


def start(run_dir: Path) -> SecuredBroker:
    """Start a broker with PLAINTEXT and SASL_SSL listeners; SCRAM-SHA-256/512 and PLAIN users get one password."""
    certs = run_dir / "certs"
    certs.mkdir(parents=True)
    store_password = secrets.token_hex(8)
    password = "pw-" + secrets.token_hex(12)
    make_certificates(certs, store_password)
    port = free_port()
    conf = run_dir / "secured.properties"
    conf.write_text(
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "listener.name.sasl_ssl.plain.sasl.jaas.config="
        f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{password}";\n'
        "ssl.keystore.type=PKCS12\n"
        f"ssl.keystore.location={certs / 'broker.p12'}\n"
        f"ssl.keystore.password={store_password}\n"
    )
    out = subprocess.run(
        [
            str(BROKER), "start", "--port", "0", "--dir", str(run_dir / "broker"),
            "--listener", f"SASL_SSL:{port}", "--conf", str(conf),
            "--scram", f"SCRAM-SHA-512=[name={USER},password={password}]",
            "--scram", f"SCRAM-SHA-256=[name={USER},password={password}]",
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return SecuredBroker(
        plaintext=out.stdout.strip().splitlines()[-1],
        sasl_ssl=f"127.0.0.1:{port}",
        password=password,
        ca=certs / "ca.crt",
        rogue_ca=certs / "rogue-ca.crt",
    )


def stop(run_dir: Path) -> None:
    """Stop the broker started in run_dir."""
    subprocess.run([str(BROKER), "stop", "--dir", str(run_dir / "broker")], check=False)
