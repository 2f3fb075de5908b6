"""Merkle hash trees as Certificate Transparency defines them (RFC 9162, section 2.1).

A leaf is SHA-256(0x00 || data), a node SHA-256(0x01 || left || right): the prefixes keep
a leaf from passing for a node. A tree of n leaves splits at the largest power of two
below n, so any count of leaves makes one tree, and an inclusion proof is the list of
sibling hashes from the leaf up. Verification is the RFC's own algorithm (2.1.3.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


@dataclass(frozen=True)
class Tree:
    root: bytes
    # paths[i]: the inclusion proof of leaf i, siblings from the leaf up.
    paths: tuple[tuple[bytes, ...], ...]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def build(leaf_data: Sequence[bytes]) -> Tree:
    """The tree over these leaves (each leaf's data, e.g. a page's SHA-256), with every proof."""
    if not leaf_data:
        raise ValueError("a hash tree needs at least one leaf")
    root, paths = _subtree([leaf_hash(data) for data in leaf_data])
    return Tree(root, tuple(tuple(path) for path in paths))


def _subtree(hashes: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    if len(hashes) == 1:
        return hashes[0], [[]]
    split = _largest_power_of_two_below(len(hashes))
    left, left_paths = _subtree(hashes[:split])
    right, right_paths = _subtree(hashes[split:])
    paths = [[*path, right] for path in left_paths] + [[*path, left] for path in right_paths]
    return node_hash(left, right), paths


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def root_from_proof(
    data: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes]
) -> bytes | None:
    """The root the proof leads to from this leaf's data, or None if the proof is malformed."""
    if not 0 <= leaf_index < tree_size:
        return None
    fn, sn, result = leaf_index, tree_size - 1, leaf_hash(data)
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def proves(
    data: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    return root_from_proof(data, leaf_index, tree_size, path) == root
