"""Published DH vectors: RFC 5903 section 8 (ECP 19-21), RFC 6932 appendix A
(Brainpool 27-30), and the MODP primes of RFC 2409 section 6 / RFC 3526.

Each ECP vector is (i, g^i, r, g^r, g^ir x); the test injects i and r as the
private values, so it checks our public value encoding (x | y), and the
shared secret (x only) in both directions.  The RFC 6932 values were taken
from the RFC's appendix as also carried by strongSwan's
test_vectors/ecpbp.c; the RFC 5903 values from section 8.1-8.3.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ike.crypto import dh
from ike.crypto.rand import RandomSource

# group: (i, g^i = x|y, r, g^r = x|y, g^ir x)
VECTORS: dict[int, tuple[str, str, str, str, str]] = {
    19: (  # RFC 5903 8.1
        "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
        "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180"
        "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
        "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
        "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63"
        "56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
        "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
    ),
    20: (  # RFC 5903 8.2
        "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655"
        "e35b538041e649ee3faef896783ab194",
        "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6"
        "de3ac808acb4bdb4c88732aee95f41aa"
        "9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38e"
        "eb9fcff3c2c947dae69b4c634573a81c",
        "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942"
        "e0308312916b8ed2960e4bd55a7448fc",
        "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d"
        "0d1ac43a0336def96fda41d0774a3571"
        "dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1ff"
        "f83fa40142209dff5eaad96db9e6386c",
        "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4"
        "d603135569b9e9d09cf5d4a270f59746",
    ),
    21: (  # RFC 5903 8.3
        "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a0"
        "95aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
        "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbe"
        "e1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e"
        "017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10a"
        "d8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
        "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e"
        "9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
        "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a21"
        "9b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f"
        "015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87"
        "220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
        "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04"
        "d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea",
    ),
    27: (  # RFC 6932 A.1
        "7c4b7a2c8a4bad1fbb7d79cc0955db7c6a4660ca64cc4778159b495e",
        "b104a67a6f6e85e14ec1825e1539e8ecdbbf584922367dd88c6bdcf2"
        "46d782e7fdb5f60cd8404301ac5949c58edb26bc68ba07695b750a94",
        "63976d4aae6cd0f6dd18defef55d96569d0507c03e74d6486ffa28fb",
        "2a97089a9296147b71b21a4b574e1278245b536f14d8c2b9d07a874e"
        "9b900d7c77a709a797276b8ca1ba61bb95b546fc29f862e44d59d25b",
        "312dfd98783f9fb77b9704945a73beb6dccbe3b65d0f967dcab574eb",
    ),
    28: (  # RFC 6932 A.2
        "81db1ee100150ff2ea338d708271be38300cb54241d79950f77b063039804f1d",
        "44106e913f92bc02a1705d9953a8414db95e1aaa49e81d9e85f929a8e3100be5"
        "8ab4846f11caccb73ce49cbdd120f5a900a69fd32c272223f789ef10eb089bdc",
        "55e40bc41e37e3e2ad25c3c6654511ffa8474a91a0032087593852d3e7d76bd3",
        "8d2d688c6cf93e1160ad04cc4429117dc2c41825e1e9fca0addd34e6f1b39f7b"
        "990c57520812be512641e47034832106bc7d3e8dd0e4c7f1136d7006547cec6a",
        "89afc39d41d3b327814b80940b042590f96556ec91e6ae7939bce31f3a18bf2b",
    ),
    29: (  # RFC 6932 A.3
        "1e20f5e048a5886f1f157c74e91bde2b98c8b52d58e5003d57053fc4b0bd65d6"
        "f15eb5d1ee1610df870795143627d042",
        "68b665dd91c195800650cdd363c625f4e742e8134667b767b1b476793588f885"
        "ab698c852d4a6e77a252d6380fcaf068"
        "55bc91a39c9ec01dee36017b7d673a931236d2f1f5c83942d049e3fa20607493"
        "e0d038ff2fd30c2ab67d15c85f7faa59",
        "032640bc6003c59260f7250c3db58ce647f98e1260acce4acda3dd869f74e01f"
        "8ba5e0324309db6a9831497abac96670",
        "4d44326f269a597a5b58bba565da5556ed7fd9a8a9eb76c25f46db69d19dc8ce"
        "6ad18e404b15738b2086df37e71d1eb4"
        "62d692136de56cbe93bf5fa3188ef58bc8a3a0ec6c1e151a21038a42e9185329"
        "b5b275903d192f8d4e1f32fe9cc78c48",
        "0bd9d3a7ea0b3d519d09d8e48d0785fb744a6b355e6304bc51c229fbbce239bb"
        "adf6403715c35d4fb2a5444f575d4f42",
    ),
    30: (  # RFC 6932 A.4
        "16302ff0dbbb5a8d733dab7141c1b45acbc8715939677f6a56850a38bd87bd59"
        "b09e80279609ff333eb9d4c061231fb26f92eeb04982a5f1d1764cad57665422",
        "0a420517e406aac0acdce90fcd71487718d3b953efd7fbec5f7f27e28c614999"
        "9397e91e029e06457db2d3e640668b392c2a7e737a7f0bf04436d11640fd09fd"
        "72e6882e8db28aad36237cd25d580db23783961c8dc52dfa2ec138ad472a0fce"
        "f3887cf62b623b2a87de5c588301ea3e5fc269b373b60724f5e82a6ad147fde7",
        "230e18e1bcc88a362fa54e4ea3902009292f7f8033624fd471b5d8ace49d12cf"
        "abbc19963dab8e2f1eba00bffb29e4d72d13f2224562f405cb80503666b25429",
        "9d45f66de5d67e2e6db6e93a59ce0bb48106097ff78a081de781cdb31fce8ccb"
        "aaea8dd4320c4119f1e9cd437a2eab3731fa9668ab268d871deda55a5473199f"
        "2fdc313095bcdd5fb3a91636f07a959c8e86b5636a1e930e8396049cb481961d"
        "365cc11453a06c719835475b12cb52fc3c383bce35e27ef194512b71876285fa",
        "a7927098655f1f9976fa50a9d566865dc530331846381c87256baf3226244b76"
        "d36403c024d7bbf0aa0803eaff405d3d24f11a9b5c0bef679fe1454b21c4cd1f",
    ),
}


class FixedRandom(RandomSource):
    """Hands out one given private value (as randrange would)."""

    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def randrange(self, low: int, high: int) -> int:
        assert low <= self.value < high
        return self.value


@pytest.mark.parametrize("gid", sorted(VECTORS))
def test_ecp_vectors(gid: int) -> None:
    i, gi, r, gr, gir = (bytes.fromhex(v) for v in VECTORS[gid])
    g = dh.group(gid)
    priv_i, pub_i = g.generate(FixedRandom(int.from_bytes(i, "big")))
    priv_r, pub_r = g.generate(FixedRandom(int.from_bytes(r, "big")))
    assert pub_i == gi
    assert pub_r == gr
    assert g.shared_secret(priv_i, gr) == gir
    assert g.shared_secret(priv_r, gi) == gir


# RFC 3526 section 3 (group 14) and RFC 2409 section 6.1 (group 1), as printed
RFC3526_P14 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
RFC2409_P1 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF", 16)


def test_modp_primes_as_printed() -> None:
    assert dh.modp_prime(14) == RFC3526_P14
    assert dh.modp_prime(1) == RFC2409_P1


@pytest.mark.parametrize("gid", [1, 2, 5, 14, 15, 16, 17, 18])
def test_modp_primes_are_safe_primes(gid: int) -> None:
    # every MODP prime of RFC 2409/3526 is a safe prime p = 2q + 1 of the stated size
    p = dh.modp_prime(gid)
    bits = {1: 768, 2: 1024, 5: 1536, 14: 2048, 15: 3072, 16: 4096, 17: 6144, 18: 8192}[gid]
    assert p.bit_length() == bits
    assert p >> (bits - 64) == (1 << 64) - 1 and p & ((1 << 64) - 1) == (1 << 64) - 1
    q = (p - 1) // 2
    assert pow(3, p - 1, p) == 1
    assert pow(3, q - 1, q) == 1


def test_brainpool_224_curve_parameters() -> None:
    from ike.crypto.ecmath import BRAINPOOL_P224R1 as c

    assert c.on_curve(c.gx, c.gy)
    assert c.multiply(c.n, (c.gx, c.gy)) is None
    # the other Brainpool curves come from cryptography; their orders match RFC 5639
    assert ec.BrainpoolP256R1().group_order == int(
        "A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7", 16)
