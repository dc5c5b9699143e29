"""``ikev2-responder certs`` (:mod:`responder.pki_cli`) end to end, and its files read by OpenSSL and NSS."""

from __future__ import annotations

import datetime
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from responder.cli import main
from responder.pki import CA_NAME, KeyType, ike_verifier
from responder.pki_cli import render_instructions

ROOT = Path(__file__).resolve().parent.parent


def _certs(*argv: str) -> tuple[int, str]:
    """Run ``ikev2-responder certs ARGV`` through the real entry point; (status, stdout)."""
    out = io.StringIO()
    status = main(["certs", *argv], out=out)
    return status, out.getvalue()


def test_default_run_writes_the_files_and_prints_how_to_use_them(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    status, out = _certs("--dir", str(directory))
    assert status == 0
    written = sorted(path.name for path in directory.iterdir())
    leaves = [
        f"{stem}{end}"
        for stem in ("responder", "client1")
        for end in (".pem", ".key", ".p12", ".p12.password")
    ]
    assert written == sorted(["ca.pem", "ca.key", *leaves])
    for name in written:
        assert f"wrote {directory / name} " in out
    d = directory
    command = (
        f"ikev2-responder --id responder.lab --cert {d}/responder.pem --key {d}/responder.key --ca {d}/ca.pem"
    )
    assert command in out.splitlines()
    assert "responder SANs: DNS:responder.lab IP:127.0.0.1 IP:::1" in out
    for stem in ("responder", "client1"):
        password = (directory / f"{stem}.p12.password").read_text().strip()
        assert f"  {directory}/{stem}.p12: {password}" in out.splitlines()
        bundle = pkcs12.load_pkcs12((directory / f"{stem}.p12").read_bytes(), password.encode())
        assert bundle.cert is not None
        assert bundle.cert.certificate == x509.load_pem_x509_certificate(
            (directory / f"{stem}.pem").read_bytes()
        )
    assert render_instructions(str(directory), "responder.lab", "client1", KeyType.ECDSA) in out
    assert out.rstrip().endswith("===== end =====")
    # what it wrote verifies now, under the CA it wrote
    ca = x509.load_pem_x509_certificates((directory / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((directory / "client1.pem").read_bytes())
    ike_verifier(ca, datetime.datetime.now(datetime.UTC)).verify(leaf, [])


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "certs"
    assert _certs("--dir", str(directory))[0] == 0
    key = (directory / "client1.key").read_bytes()
    status, out = _certs("--dir", str(directory))
    assert (status, out) == (1, "")
    assert "error: not overwriting" in capsys.readouterr().err
    assert (directory / "client1.key").read_bytes() == key
    status, out = _certs("--dir", str(directory), "--force")
    assert status == 0 and "kept" not in out
    assert (directory / "client1.key").read_bytes() != key


def test_adds_clients_to_the_existing_ca(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    assert _certs("--dir", str(directory), "--responder-id", "vpn.example.org")[0] == 0
    status, out = _certs(
        "--dir", str(directory), "--no-responder", "--client", "bob", "--client", "carol@example.org"
    )
    assert status == 0
    assert f"kept {directory}/ca.pem and {directory}/ca.key" in out
    assert "--id vpn.example.org" in out  # the responder certificate already there names it
    carol = x509.load_pem_x509_certificate((directory / "carol@example.org.pem").read_bytes())
    san = carol.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.RFC822Name("carol@example.org")]
    assert "===== carol@example.org: the same, with their own files and identities =====" in out


def test_a_given_p12_password(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    status, out = _certs(
        "--dir", str(directory), "--p12-password", "lab lab lab", "--key-type", "rsa", "--rsa-bits", "2048"
    )
    assert status == 0
    assert not list(directory.glob("*.password"))
    assert "lab lab lab" not in out and "PKCS#12 passwords" not in out
    assert "the one given with --p12-password" in out
    assert "authby=rsasig" in out
    bundle = pkcs12.load_pkcs12((directory / "client1.p12").read_bytes(), b"lab lab lab")
    assert bundle.key is not None


def test_ed25519_prints_strongswan_only(tmp_path: Path) -> None:
    status, out = _certs("--dir", str(tmp_path / "certs"), "--key-type", "ed25519")
    assert status == 0
    assert "===== strongSwan (swanctl) =====" in out
    assert "take no Ed25519 keys" in out
    for other in ("libreswan", "Android", "Apple", "Windows 10/11"):
        assert f"===== {other}" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--rsa-bits", "1024"],
        ["--days", "0"],
        ["--client", "ca"],
        ["--client", "a", "--client", "a"],
        ["--client", "../escape"],
        ["--san", "IP:not-an-address"],
        ["--responder-id", "email:ops@lab"],
        ["--no-responder", "--client", ""],
        ["--p12-password", ""],
        ["--key-type", "dsa"],
        ["--no-such-flag"],
    ],
)
def test_usage_errors_write_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "certs"
    assert _certs("--dir", str(directory), *argv)[0] == 2
    assert "error" in capsys.readouterr().err
    assert not directory.exists()


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert _certs("--help")[0] == 0
    assert "--responder-id" in capsys.readouterr().out


def test_libreswan_and_windows_lines_follow_the_responder_id() -> None:
    text = render_instructions("/tmp/x y", "192.0.2.2", "alice@example.org", KeyType.RSA, password_files=True)
    assert "    rightid=192.0.2.2" in text  # an address stays bare; a name gets libreswan's @
    assert "-ServerAddress 192.0.2.2" in text
    bundle = "'/tmp/x y/alice@example.org.p12'"
    assert (
        f"pk12util -i {bundle} -d sql:/var/lib/ipsec/nss -w '/tmp/x y/alice@example.org.p12.password'" in text
    )
    assert "    leftid=alice@example.org" in text


def test_readme_shows_what_the_command_prints() -> None:
    readme = (ROOT / "certs" / "README.md").read_text()
    expected = render_instructions("certs", "responder.lab", "client1", KeyType.ECDSA)
    assert f"```text\n{expected}```\n" in readme


def test_nothing_written_here_is_committed() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["ca.key", "ca.pem", "responder.key", "client1.p12", "client1.p12.password", "bob.pem"]
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", *(f"certs/{name}" for name in names)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == [f"certs/{name}" for name in names]
    kept = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "certs/README.md", "certs/.gitignore"],
        capture_output=True,
        check=False,
    )
    assert kept.returncode == 1  # neither is ignored


# ---------------------------------------------------------------------------
# Other tools read the files: OpenSSL and NSS (what libreswan uses)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["ecdsa", "rsa"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lab") / "certs"
    assert _certs("--dir", str(directory), "--key-type", request.param)[0] == 0
    return directory


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


def test_openssl_reads_the_pkcs12_bundles(lab: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    for stem in ("client1", "responder"):
        password = (lab / f"{stem}.p12.password").read_text().strip()
        shown = _run(
            "openssl",
            "pkcs12",
            "-info",
            "-nokeys",
            "-in",
            str(lab / f"{stem}.p12"),
            "-passin",
            f"pass:{password}",
        )
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout + shown.stderr
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in text
        assert "MAC: sha1" in text
        assert f"friendlyName: {CA_NAME}" in text and f"friendlyName: {stem}" in text
        wrong = _run(
            "openssl", "pkcs12", "-info", "-nokeys", "-in", str(lab / f"{stem}.p12"), "-passin", "pass:wrong"
        )
        assert wrong.returncode != 0


def test_openssl_accepts_each_certificate_for_its_purpose(lab: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    ca = str(lab / "ca.pem")
    server = _run("openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", str(lab / "responder.pem"))
    client = _run("openssl", "verify", "-CAfile", ca, "-purpose", "sslclient", str(lab / "client1.pem"))
    assert server.returncode == 0 and client.returncode == 0, server.stderr + client.stderr
    # and not the other way round: the EKUs say which end each certificate is
    wrong = _run("openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", str(lab / "client1.pem"))
    assert wrong.returncode != 0


def test_pk12util_imports_into_an_nss_database(lab: Path, tmp_path: Path) -> None:
    if shutil.which("pk12util") is None or shutil.which("certutil") is None:
        pytest.skip("pk12util/certutil are not installed (apt-get install libnss3-tools)")
    db = f"sql:{tmp_path}"
    assert _run("certutil", "-N", "-d", db, "--empty-password").returncode == 0
    for stem in ("client1", "responder"):
        imported = _run(
            "pk12util", "-i", str(lab / f"{stem}.p12"), "-d", db, "-w", str(lab / f"{stem}.p12.password")
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
    # the printed step: trust the CA that came in the bundle, by its nickname
    trusted = _run("certutil", "-M", "-d", db, "-n", CA_NAME, "-t", "CT,,")
    assert trusted.returncode == 0, trusted.stderr
    listing = _run("certutil", "-L", "-d", db).stdout
    assert "client1" in listing and "responder" in listing and CA_NAME in listing
    keys = _run("certutil", "-K", "-d", db).stdout
    assert "client1" in keys and "responder" in keys
    # NSS's own path validation: the client certificate for a client, the responder's for a server
    for nickname, usage in (("client1", "C"), ("responder", "V")):
        checked = _run("certutil", "-V", "-d", db, "-n", nickname, "-u", usage)
        assert "certificate is valid" in checked.stdout, checked.stdout + checked.stderr
