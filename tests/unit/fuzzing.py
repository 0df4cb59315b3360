"""What the fuzz tests share: the run length (FUZZ_EXAMPLES) and the mutation strategy."""

from __future__ import annotations

import os
from typing import Callable, List, Optional

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 500,
    derandomize=not EXAMPLES,  # the quick run is the same every time; the long one explores
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn, seeds: List[bytes], fix: Optional[Callable[[bytearray], None]] = None) -> bytes:
    """A valid datagram with 1-4 mutations: flipped or set bytes, truncation, extension, splice.

    ``fix`` adds one more kind: a repair (e.g. of a length field) that gets a mutant past the first check.
    """
    data = bytearray(draw(st.sampled_from(seeds)))
    kinds = ["flip", "set", "truncate", "extend", "splice"] + (["fix"] if fix else [])
    for _step in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind in ("flip", "set") and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = data[at] ^ (1 << draw(st.integers(0, 7))) if kind == "flip" else draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, min(len(data), len(other))))
            data = data[:cut] + bytearray(other[cut:])
        elif kind == "fix" and fix is not None:
            fix(data)
    return bytes(data)
