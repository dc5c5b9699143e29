"""Test vectors of RFC 4868 §2.7, as printed in the RFC (hex strings).

Extracted from the RFC text.  Two typos in the RFC are kept here as printed and
corrected where the tests read them (see ``tests/core/test_transforms.py``):
AUTH384-1 labels its 192-bit truncation "HMAC-SHA-384-128", and AUTH512-4 prints
an 80-octet key although its expected values use the last 64 octets.
"""

RFC4868_CASES: dict[str, dict[str, str]] = {
    "PRF-1": {
        "Key": "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "Data": "4869205468657265",
        "PRF-HMAC-SHA-256": "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "PRF-HMAC-SHA-384": (
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"
        ),
        "PRF-HMAC-SHA-512": (
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        ),
    },
    "PRF-2": {
        "Key": "4a656665",
        "Data": "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "PRF-HMAC-SHA-256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "PRF-HMAC-SHA-384": (
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        ),
        "PRF-HMAC-SHA-512": (
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        ),
    },
    "PRF-3": {
        "Key": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Data": (
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
            "dddddddddddddddddddddddddddddddddddd"
        ),
        "PRF-HMAC-SHA-256": "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        "PRF-HMAC-SHA-384": (
            "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27"
        ),
        "PRF-HMAC-SHA-512": (
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
            "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"
        ),
    },
    "PRF-4": {
        "Key": "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "Data": (
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
        ),
        "PRF-HMAC-SHA-256": "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        "PRF-HMAC-SHA-384": (
            "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb"
        ),
        "PRF-HMAC-SHA-512": (
            "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
            "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"
        ),
    },
    "PRF-5": {
        "Key": (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaa"
        ),
        "Data": (
            "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
            "65204b6579202d2048617368204b6579204669727374"
        ),
        "PRF-HMAC-SHA-256": "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "PRF-HMAC-SHA-384": (
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"
        ),
        "PRF-HMAC-SHA-512": (
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
            "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
        ),
    },
    "PRF-6": {
        "Key": (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaa"
        ),
        "Data": (
            "5468697320697320612074657374207573696e672061206c6172676572207468"
            "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
            "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
            "647320746f20626520686173686564206265666f7265206265696e6720757365"
            "642062792074686520484d414320616c676f726974686d2e"
        ),
        "PRF-HMAC-SHA-256": "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        "PRF-HMAC-SHA-384": (
            "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e"
        ),
        "PRF-HMAC-SHA-512": (
            "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
            "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"
        ),
    },
    "AUTH256-1": {
        "Key": "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "Data": "4869205468657265",
        "PRF-HMAC-SHA-256": "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7",
        "HMAC-SHA-256-128": "198a607eb44bfbc69903a0f1cf2bbdc5",
    },
    "AUTH256-2": {
        "Key": "4a6566654a6566654a6566654a6566654a6566654a6566654a6566654a656665",
        "Data": "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "PRF-HMAC-SHA-256": "167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6",
        "HMAC-SHA-256-128": "167f928588c5cc2eef8e3093caa0e87c",
    },
    "AUTH256-3": {
        "Key": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Data": (
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
            "dddddddddddddddddddddddddddddddddddd"
        ),
        "PRF-HMAC-SHA-256": "cdcb1220d1ecccea91e53aba3092f962e549fe6ce9ed7fdc43191fbde45c30b0",
        "HMAC-SHA-256-128": "cdcb1220d1ecccea91e53aba3092f962",
    },
    "AUTH256-4": {
        "Key": "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        "Data": (
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
        ),
        "PRF-HMAC-SHA-256": "372efcf9b40b35c2115b1346903d2ef42fced46f0846e7257bb156d3d7b30d3f",
        "HMAC-SHA-256-128": "372efcf9b40b35c2115b1346903d2ef4",
    },
    "AUTH384-1": {
        "Key": (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
        ),
        "Data": "4869205468657265",
        "PRF-HMAC-SHA-384": (
            "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc4c5df61d5b3297b4fb68dab9f1b582c2"
        ),
        "HMAC-SHA-384-128": "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
    },
    "AUTH384-2": {
        "Key": (
            "4a6566654a6566654a6566654a6566654a6566654a6566654a6566654a6566654a6566654a6566654a6566654a656665"
        ),
        "Data": "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "PRF-HMAC-SHA-384": (
            "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184da86a368e9b8e16f5349524ca4e82400cbde0686d403371c9"
        ),
        "HMAC-SHA-384-192": "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d",
    },
    "AUTH384-3": {
        "Key": (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ),
        "Data": (
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
            "dddddddddddddddddddddddddddddddddddd"
        ),
        "PRF-HMAC-SHA-384": (
            "809f439be00274321d4a538652164b53554a508184a0c3160353e3428597003d35914a18770f9443987054944b7c4b4a"
        ),
        "HMAC-SHA-384-192": "809f439be00274321d4a538652164b53554a508184a0c316",
    },
    "AUTH384-4": {
        "Key": (
            "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f200a0b0c0d0e0f10111213141516171819"
        ),
        "Data": (
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
        ),
        "PRF-HMAC-SHA-384": (
            "5b540085c6e6358096532b2493609ed1cb298f774f87bb5c2ebf182c83cc7428707fb92eab2536a5812258228bc96687"
        ),
        "HMAC-SHA-384-192": "5b540085c6e6358096532b2493609ed1cb298f774f87bb5c",
    },
    "AUTH512-1": {
        "Key": (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
        ),
        "Data": "4869205468657265",
        "PRF-HMAC-SHA-512": (
            "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"
            "ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b"
        ),
        "HMAC-SHA-512-256": "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
    },
    "AUTH512-2": {
        "Key": (
            "4a6566654a6566654a6566654a6566654a6566654a6566654a6566654a656665"
            "4a6566654a6566654a6566654a6566654a6566654a6566654a6566654a656665"
        ),
        "Data": "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "PRF-HMAC-SHA-512": (
            "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"
            "6aa334ae9fb9afc2184932d8695e397bfa0ffb93466cfcceaae38c833b7dba38"
        ),
        "HMAC-SHA-512-256": "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454",
    },
    "AUTH512-3": {
        "Key": (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ),
        "Data": (
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
            "dddddddddddddddddddddddddddddddddddd"
        ),
        "PRF-HMAC-SHA-512": (
            "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8"
            "623c7b55cebefccf02d5581acc1c9d5fb1ff68a1de45509fbe4da9a433922655"
        ),
        "HMAC-SHA-512-256": "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8",
    },
    "AUTH512-4": {
        "Key": (
            "0a0b0c0d0e0f101112131415161718190102030405060708090a0b0c0d0e0f10"
            "1112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30"
            "3132333435363738393a3b3c3d3e3f40"
        ),
        "Data": (
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
        ),
        "PRF-HMAC-SHA-512": (
            "5e6688e5a3daec826ca32eaea224eff5e700628947470e13ad01302561bab108"
            "b8c48cbc6b807dcfbd850521a685babc7eae4a2a2e660dc0e86b931d65503fd2"
        ),
        "HMAC-SHA-512-256": "5e6688e5a3daec826ca32eaea224eff5e700628947470e13ad01302561bab108",
    },
}
