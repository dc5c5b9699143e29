"""Which identities a certificate vouches for (RFC 4945 §3.1, §5.1.2).

Strategy: kept apart from :mod:`responder.core.certificates` (validation) so that
the configuration can check, when it is built, that an identity we sign as is in
our own certificate, without importing what imports the configuration.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509

from responder.core.dn import DnError, dn_match
from responder.core.enums import IdType
from responder.core.identity import Identity

__all__ = ["certificate_binds", "subject_alt_names"]


def subject_alt_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    """The certificate's subjectAltNames; none when it has none or they do not parse."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return []
    return list(san)


def certificate_binds(certificate: x509.Certificate, identity: Identity) -> bool:
    """Whether ``identity`` is one the certificate vouches for (RFC 4945 §3.1, §5.1.2).

    ID_FQDN must be a dNSName SAN, ID_RFC822_ADDR an rfc822Name SAN, ID_IPV4_ADDR
    and ID_IPV6_ADDR an iPAddress SAN (compared case-insensitively where
    names are), ID_DER_ASN1_DN the subject (or a directoryName SAN), compared
    by RDN as strongSwan compares DNs.  ID_KEY_ID binds to nothing.
    """
    names = subject_alt_names(certificate)
    kind = identity.id_type
    if kind is IdType.ID_FQDN or kind is IdType.ID_RFC822_ADDR:
        text = identity.data.decode("utf-8", "replace").lower()
        wanted = x509.DNSName if kind is IdType.ID_FQDN else x509.RFC822Name
        return any(isinstance(n, wanted) and n.value.lower() == text for n in names)
    if kind is IdType.ID_IPV4_ADDR or kind is IdType.ID_IPV6_ADDR:
        if len(identity.data) != (4 if kind is IdType.ID_IPV4_ADDR else 16):
            return False
        address = ipaddress.ip_address(identity.data)
        return any(isinstance(n, x509.IPAddress) and n.value == address for n in names)
    if kind is IdType.ID_DER_ASN1_DN:
        try:
            candidates = [certificate.subject, *(n.value for n in names if isinstance(n, x509.DirectoryName))]
        except ValueError:  # a malformed subject
            return False
        for candidate in candidates:
            try:
                if dn_match(identity.data, candidate.public_bytes(), wildcards=False):
                    return True
            except (DnError, ValueError):
                continue
    return False
