#!/usr/bin/python3
# Independent reference for the envelope encoding and hash chain of
# docs/format.md, written against the spec with Debian's python3-msgpack and
# hashlib (not the C++ code). It prints tests/golden/envelopes.txt; the C++
# golden test checks the codec against that file. Regenerate only when the
# format changes on purpose:
#   /usr/bin/python3 tests/golden/make_envelope_vectors.py > tests/golden/envelopes.txt
import hashlib
import msgpack

def fields(e):
    return [e["stream"], e["seq"], e["epoch"], e["timestamp_ns"], e["id"],
            e["type"], e["metadata"], e["payload"]]

def seal(e, prev):
    # use_bin_type: bytes -> bin, str -> str; msgpack-python packs ints and
    # lengths in their shortest form, as the format requires.
    unsealed = msgpack.packb(fields(e), use_bin_type=True)
    digest = hashlib.blake2b(prev + unsealed, digest_size=32).digest()
    return msgpack.packb(fields(e) + [digest], use_bin_type=True), digest

chain = [
    dict(stream="orders", seq=1, epoch=1, timestamp_ns=1700000000000000000,
         id=bytes(range(16)), type="order-placed", metadata=b"", payload=b'{"sku":"A-1","qty":2}'),
    dict(stream="orders", seq=2, epoch=1, timestamp_ns=1700000000000000001,
         id=bytes([0xff] * 16), type="", metadata=b"trace=abc", payload=b""),
    # Sizes at the edges of msgpack's short forms: 31/32-byte str, 255/256-byte bin,
    # seq 127/128, epoch 65536, a 300-byte payload.
    dict(stream="orders", seq=3, epoch=65536, timestamp_ns=0,
         id=bytes([7] * 16), type="t" * 31, metadata=b"m" * 255, payload=b"p" * 256),
    dict(stream="orders", seq=4, epoch=65536, timestamp_ns=255,
         id=bytes([8] * 16), type="u" * 32, metadata=b"\x00" * 256, payload=bytes(range(256)) + b"x" * 44),
]
other = [
    dict(stream="$topology", seq=128, epoch=4294967296, timestamp_ns=18446744073709551615,
         id=bytes(16), type="vote", metadata=b"", payload=b"\x01\x02"),
]

print("# Golden envelope vectors: one line per envelope, space-separated:")
print("# name prev_hash_hex sealed_envelope_hex hash_hex")
print("# Made by make_envelope_vectors.py (an independent implementation).")
prev = bytes(32)
for i, e in enumerate(chain):
    sealed, digest = seal(e, prev)
    print(f"orders-{i + 1} {prev.hex()} {sealed.hex()} {digest.hex()}")
    prev = digest
prev = bytes(32)
for e in other:
    sealed, digest = seal(e, prev)
    print(f"topology-128 {prev.hex()} {sealed.hex()} {digest.hex()}")
