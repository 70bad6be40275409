#!/usr/bin/env python3
"""Expected first draws of SeededGenerator (Sources/NFMTensor/SeededGenerator.swift), computed here
independently of the Swift code: SplitMix64 seeding, xoshiro256** (Blackman & Vigna 2018), and the
bounded draw of Lemire 2019 ("Fast random integer generation in an interval"), written from the
papers in plain Python integers. Tests/NFMTensorTests/SeededGeneratorTests.swift pins its output.

Run: python3 scripts/reference/seeded_generator_reference.py (standard library only)."""

MASK = (1 << 64) - 1


def splitmix64_seeds(seed, count):
    state, out = seed, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Xoshiro256StarStar:
    def __init__(self, seed):
        self.s = splitmix64_seeds(seed, 4)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def bounded(self, bound):
        """A uniform integer in [0, bound): the high word of next() * bound, rejecting the low words
        below 2^64 mod bound."""
        threshold = (1 << 64) % bound
        while True:
            product = self.next() * bound
            if (product & MASK) >= threshold:
                return product >> 64


if __name__ == "__main__":
    generator = Xoshiro256StarStar(2024)
    print("raw, seed 2024:", [generator.next() for _ in range(4)])
    generator = Xoshiro256StarStar(7)
    print("below 6, seed 7:", [generator.bounded(6) for _ in range(12)])
    generator = Xoshiro256StarStar(7)
    print("below 100000, seed 7:", [generator.bounded(100_000) for _ in range(6)])
    # A bound just above 2^62 rejects about a quarter of the draws, so the rejection loop is exercised.
    generator = Xoshiro256StarStar(3)
    draws = []
    for _ in range(8):
        draws.append(generator.bounded((1 << 62) + 1))
    print("below 2^62 + 1, seed 3:", draws)
    # How many raw words those 8 draws consumed (more than 8 means some were rejected).
    check = Xoshiro256StarStar(3)
    consumed, accepted = 0, 0
    while accepted < 8:
        product = check.next() * ((1 << 62) + 1)
        consumed += 1
        if (product & MASK) >= (1 << 64) % ((1 << 62) + 1):
            accepted += 1
    print("raw words consumed:", consumed)
