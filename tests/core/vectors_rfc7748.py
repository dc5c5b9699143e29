"""Test vectors of RFC 7748 §5.2 and §6, and of RFC 8031 Appendix A, as printed (hex strings).

Extracted from the RFC texts.  The 1,000,000-iteration results of RFC 7748 §5.2
are left out: they take minutes (66 s for X25519, 338 s for X448).
RFC 8031 prints d_i and d_r as big-endian numbers; the private keys are the
little-endian octet strings fixed_i and fixed_r (RFC 7748 §5).
"""

#: RFC 7748 §5.2, first type: (function, input scalar, input u-coordinate, output u-coordinate).
RFC7748_SINGLE: list[tuple[str, str, str, str]] = [
    (
        "X25519",
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "X25519",
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
    (
        "X448",
        (
            "3d262fddf9ec8e88495266fea19a34d28882acef045104d0d1aae121"
            "700a779c984c24f8cdd78fbff44943eba368f54b29259a4f1c600ad3"
        ),
        (
            "06fce640fa3487bfda5f6cf2d5263f8aad88334cbd07437f020f08f9"
            "814dc031ddbdc38c19c6da2583fa5429db94ada18aa7a7fb4ef8a086"
        ),
        (
            "ce3e4ff95a60dc6697da1db1d85e6afbdf79b50a2412d7546d5f239f"
            "e14fbaadeb445fc66a01b0779d98223961111e21766282f73dd96b6f"
        ),
    ),
    (
        "X448",
        (
            "203d494428b8399352665ddca42f9de8fef600908e0d461cb021f8c5"
            "38345dd77c3e4806e25f46d3315c44e0a5b4371282dd2c8d5be3095f"
        ),
        (
            "0fbcc2f993cd56d3305b0b7d9e55d4c1a8fb5dbb52f8e9a1e9b6201b"
            "165d015894e56c4d3570bee52fe205e28a78b91cdfbde71ce8d157db"
        ),
        (
            "884a02576239ff7a2f2f63b2db6a9ff37047ac13568e1e30fe63c4a7"
            "ad1b3ee3a5700df34321d62077e63633c575c1c954514e99da7c179d"
        ),
    ),
]

#: RFC 7748 §5.2, second type: k after 1 and after 1,000 iterations.
RFC7748_ITERATED: dict[str, dict[int, str]] = {
    "X25519": {
        1: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
        1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
    },
    "X448": {
        1: (
            "3f482c8a9f19b01e6c46ee9711d9dc14fd4bf67af30765c2ae2b846a"
            "4d23a8cd0db897086239492caf350b51f833868b9bc2b3bca9cf4113"
        ),
        1000: (
            "aa3b4749d55b9daf1e5b00288826c467274ce3ebbdd5c17b975e09d4"
            "af6c67cf10d087202db88286e2b79fceea3ec353ef54faa26e219f38"
        ),
    },
}

#: RFC 7748 §6.1 (X25519) and §6.2 (X448): Alice (a, K_A), Bob (b, K_B), shared K.
RFC7748_DH: dict[str, dict[str, str]] = {
    "X25519": {
        "a": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "K_A": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "b": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        "K_B": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "K": "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    },
    "X448": {
        "a": (
            "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28d"
            "d9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b"
        ),
        "K_A": (
            "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c"
            "22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0"
        ),
        "b": (
            "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d"
            "6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d"
        ),
        "K_B": (
            "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b430"
            "27d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609"
        ),
        "K": (
            "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
            "b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d"
        ),
    },
}

#: RFC 8031 Appendix A: Curve25519 in IKEv2, initiator (_i) and responder (_r).
RFC8031_CURVE25519: dict[str, str] = {
    "random_i": "751fb4308655b476b6789b7325f9ea8cddd16a58533ff6d9e60009464a5f9d94",
    "random_r": "0a54645253290d60ddadd0e030bacd9e5501efdc220755a1e978f1b839a05688",
    "fixed_i": "701fb4308655b476b6789b7325f9ea8cddd16a58533ff6d9e60009464a5f9d54",
    "fixed_r": "0854645253290d60ddadd0e030bacd9e5501efdc220755a1e978f1b839a05648",
    "pub_i": "48d5ddd4061257ba166fa3f9bbdb74f1a4e81c089384fa77f790709f0dfbc766",
    "pub_r": "0be7c1f5aad87d7e448662673298a443478b859745179eaf564c79c0ef6eee25",
    "SHARED_SECRET": "c74950607a12327f3204d94b6825bfb068b7f8319a9e3708ed3d43ce8130c950",
    "d_i": "549d5f4a460900e6d9f63f53586ad1dd8ceaf925739b78b676b4558630b41f70",
    "d_r": "4856a039b8f178e9a1550722dcef01559ecdba30e0d0addd600d295352645408",
}
