//! The RFC 9162 (RFC 6962) Merkle tree over the log: leaf and node hashes, the tree head, the
//! compact right edge a writer appends to, and inclusion and consistency proofs.
//!
//! Nodes are addressed as perfect subtrees: `(level, index)` covers the leaves
//! `[index << level, (index + 1) << level)`, and level 0 holds the leaf hashes. A store keeps
//! the nodes [`Frontier::push`] reports; the proofs ask it only for such perfect nodes inside
//! the tree they are about, and compute the subtrees of the right edge from them.

use crate::canonical::Digest;
use sha2::{Digest as _, Sha256};

/// Why a proof or a frontier cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the old tree size {old} is larger than the new tree size {new}")]
    OldLargerThanNew { old: u64, new: u64 },
    #[error("RFC 9162 defines no consistency proof from the empty tree")]
    EmptyOldTree,
    #[error("a tree of size {size} has {expected} peaks, not {got}")]
    PeakCount {
        size: u64,
        expected: u32,
        got: usize,
    },
}

/// SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Digest {
    Digest(
        Sha256::new()
            .chain_update([0])
            .chain_update(data)
            .finalize()
            .into(),
    )
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest(
        Sha256::new()
            .chain_update([1])
            .chain_update(left.0)
            .chain_update(right.0)
            .finalize()
            .into(),
    )
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Digest {
    Digest::of(&[])
}

/// The Merkle tree hash (RFC 9162 2.1.1) of already hashed leaves.
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = split(leaves.len() as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (at least 2): where RFC 9162 splits `n` leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a tree being appended to: its size and the hashes of the perfect
/// subtrees its size decomposes into, largest (leftmost) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Digest>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from stored peaks, as [`peak_positions`] lists them.
    pub fn from_parts(size: u64, peaks: Vec<Digest>) -> Result<Self, MerkleError> {
        if peaks.len() != size.count_ones() as usize {
            return Err(MerkleError::PeakCount {
                size,
                expected: size.count_ones(),
                got: peaks.len(),
            });
        }
        Ok(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Digest] {
        &self.peaks
    }

    /// Appends a leaf hash, and to `created` every node it completes as `(level, index, hash)`,
    /// from the leaf itself (level 0) upwards.
    pub fn push(&mut self, leaf: Digest, created: &mut Vec<(u32, u64, Digest)>) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0;
        created.push((0, index, hash));
        // Every trailing one bit of the index is a peak of the same level to merge with.
        while (index >> level) & 1 == 1 {
            let left = self
                .peaks
                .pop()
                .expect("every one bit of the size has its peak");
            hash = node_hash(&left, &hash);
            level += 1;
            created.push((level, index >> level, hash));
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The tree head: the peaks folded from right to left.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// The `(level, index)` of the peaks of a tree of `size`, largest first.
pub fn peak_positions(size: u64) -> Vec<(u32, u64)> {
    let mut start = 0;
    (0..u64::BITS)
        .rev()
        .filter(|level| (size >> level) & 1 == 1)
        .map(|level| {
            let position = (level, start >> level);
            start += 1 << level;
            position
        })
        .collect()
}

/// MTH(D[start:end]) from perfect nodes. `start` is aligned as in every subtree the RFC's
/// recursions visit: a multiple of the split of `end - start`, or of `end - start` itself when
/// that is a power of two.
fn subtree_hash(start: u64, end: u64, node: &mut impl FnMut(u32, u64) -> Digest) -> Digest {
    let n = end - start;
    if n.is_power_of_two() {
        debug_assert_eq!(start % n, 0);
        let level = n.trailing_zeros();
        return node(level, start >> level);
    }
    let k = split(n);
    let left = subtree_hash(start, start + k, node);
    let right = subtree_hash(start + k, end, node);
    node_hash(&left, &right)
}

/// The inclusion proof of leaf `index` in the tree of `size` (RFC 9162 2.1.3.1, PATH), leaf
/// side first. `node(level, index)` gives the hash of a perfect subtree; it is only asked for
/// subtrees that lie within the tree of `size`.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    mut node: impl FnMut(u32, u64) -> Digest,
) -> Result<Vec<Digest>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            proof.push(subtree_hash(start + k, end, &mut node));
            end = start + k;
        } else {
            proof.push(subtree_hash(start, start + k, &mut node));
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof from the tree of `old` to the tree of `new` leaves (RFC 9162 2.1.4.1,
/// SUBPROOF), leaf side first; empty when `old == new`. RFC 9162 asks for `0 < old`: every tree
/// extends the empty one, and there is no proof of it, so `old == 0` is an error. `node` is
/// asked as in [`inclusion_proof`].
pub fn consistency_proof(
    old: u64,
    new: u64,
    mut node: impl FnMut(u32, u64) -> Digest,
) -> Result<Vec<Digest>, MerkleError> {
    if old > new {
        return Err(MerkleError::OldLargerThanNew { old, new });
    }
    if old == 0 {
        return Err(MerkleError::EmptyOldTree);
    }
    let mut proof = Vec::new();
    // The subtree D[start:end] the recursion is in, and its flag b: whether it is a left edge of
    // the new tree, whose hash the verifier knows as the old root.
    let (mut start, mut end, mut left_edge) = (0, new, true);
    loop {
        if old == end {
            if !left_edge {
                proof.push(subtree_hash(start, end, &mut node));
            }
            break;
        }
        let k = split(end - start);
        if old <= start + k {
            proof.push(subtree_hash(start + k, end, &mut node));
            end = start + k;
        } else {
            proof.push(subtree_hash(start, start + k, &mut node));
            start += k;
            left_edge = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Whether `proof` shows the leaf hash `leaf` at `index` in the tree of `size` with `root`
/// (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Digest,
    proof: &[Digest],
    root: &Digest,
) -> bool {
    if index >= size {
        return false;
    }
    // The RFC's fn and sn.
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Whether `proof` shows that the tree of `new` with `new_root` extends the tree of `old` with
/// `old_root` (RFC 9162 2.1.4.2). Equal sizes need an empty proof and equal roots; `old == 0`
/// has no proof (see [`consistency_proof`]) and is refused.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path = proof.iter();
    // A power-of-two old tree is a node of the new one, and its root is not in the proof.
    let first = if old.is_power_of_two() {
        old_root
    } else {
        path.next().expect("the proof is not empty")
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The leaves of the RFC 6962 test vectors (certificate-transparency, transparency-dev).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// Their roots for the sizes 0 to 8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn d(hex: &str) -> Digest {
        Digest::from_hex(hex).unwrap()
    }

    fn leaves() -> Vec<Digest> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap()))
            .collect()
    }

    /// The perfect nodes of the 8-leaf tree, as a store would keep them.
    fn nodes() -> HashMap<(u32, u64), Digest> {
        let mut frontier = Frontier::new();
        let mut created = Vec::new();
        for leaf in leaves() {
            frontier.push(leaf, &mut created);
        }
        created.into_iter().map(|(l, i, h)| ((l, i), h)).collect()
    }

    #[test]
    fn roots_are_those_of_the_rfc_6962_vectors() {
        let leaves = leaves();
        let mut frontier = Frontier::new();
        assert_eq!(root(&[]), d(ROOTS[0]));
        assert_eq!(frontier.root(), d(ROOTS[0]));
        for n in 1..=8 {
            assert_eq!(root(&leaves[..n]), d(ROOTS[n]), "size {n}");
            frontier.push(leaves[n - 1], &mut Vec::new());
            assert_eq!(frontier.root(), d(ROOTS[n]), "size {n}");
        }
        assert_eq!(empty_root(), d(ROOTS[0]));
        assert_eq!(leaf_hash(b""), d(ROOTS[1]));
        assert_eq!(node_hash(&leaves[0], &leaves[1]), d(ROOTS[2]));
    }

    #[test]
    fn proofs_are_those_of_the_rfc_6962_vectors() {
        let (leaves, nodes) = (leaves(), nodes());
        let node = |l, i| nodes[&(l, i)];
        // (index, size, proof) and (old, new, proof) from transparency-dev/merkle.
        let inclusion: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in inclusion {
            let want: Vec<Digest> = want.iter().map(|h| d(h)).collect();
            assert_eq!(inclusion_proof(index, size, node).unwrap(), want);
            let (leaf, root) = (&leaves[index as usize], &d(ROOTS[size as usize]));
            assert!(verify_inclusion(index, size, leaf, &want, root));
        }
        let consistency: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, want) in consistency {
            let want: Vec<Digest> = want.iter().map(|h| d(h)).collect();
            assert_eq!(consistency_proof(old, new, node).unwrap(), want);
            let (old_root, new_root) = (d(ROOTS[old as usize]), d(ROOTS[new as usize]));
            assert!(verify_consistency(old, new, &old_root, &new_root, &want));
            assert!(!verify_consistency(old, new, &new_root, &old_root, &want));
        }
    }

    #[test]
    fn proofs_of_impossible_requests_are_errors() {
        let nodes = nodes();
        let node = |l, i| nodes[&(l, i)];
        assert_eq!(
            inclusion_proof(8, 8, node),
            Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            inclusion_proof(0, 0, node),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(inclusion_proof(0, 1, node), Ok(vec![]));
        assert_eq!(
            consistency_proof(6, 5, node),
            Err(MerkleError::OldLargerThanNew { old: 6, new: 5 })
        );
        assert_eq!(
            consistency_proof(0, 5, node),
            Err(MerkleError::EmptyOldTree)
        );
        assert_eq!(
            consistency_proof(0, 0, node),
            Err(MerkleError::EmptyOldTree)
        );
        assert_eq!(consistency_proof(5, 5, node), Ok(vec![]));
    }

    #[test]
    fn degenerate_verifications() {
        let leaves = leaves();
        let (r1, r5) = (d(ROOTS[1]), d(ROOTS[5]));
        assert!(verify_inclusion(0, 1, &leaves[0], &[], &r1));
        assert!(!verify_inclusion(0, 1, &leaves[1], &[], &r1));
        assert!(!verify_inclusion(1, 1, &leaves[0], &[], &r1));
        assert!(!verify_inclusion(0, 0, &empty_root(), &[], &empty_root()));
        // Equal sizes: an empty proof and equal roots.
        assert!(verify_consistency(5, 5, &r5, &r5, &[]));
        assert!(!verify_consistency(5, 5, &r5, &r1, &[]));
        assert!(!verify_consistency(5, 5, &r5, &r5, &[r5]));
        // No proof from or to nothing, none backwards, none empty between different sizes.
        assert!(!verify_consistency(0, 0, &empty_root(), &empty_root(), &[]));
        assert!(!verify_consistency(0, 5, &empty_root(), &r5, &[]));
        assert!(!verify_consistency(5, 1, &r5, &r1, &[]));
        assert!(!verify_consistency(1, 5, &r1, &r5, &[]));
        assert!(!verify_consistency(4, 5, &d(ROOTS[4]), &r5, &[]));
    }

    #[test]
    fn peaks_are_the_binary_decomposition_of_the_size() {
        assert_eq!(peak_positions(0), vec![]);
        assert_eq!(peak_positions(1), vec![(0, 0)]);
        assert_eq!(peak_positions(6), vec![(2, 0), (1, 2)]);
        assert_eq!(peak_positions(7), vec![(2, 0), (1, 2), (0, 6)]);
        assert_eq!(peak_positions(8), vec![(3, 0)]);
        assert_eq!(peak_positions(u64::MAX).len(), 64);
        assert_eq!(peak_positions(u64::MAX)[63], (0, u64::MAX - 1));

        let nodes = nodes();
        for size in 0..=8 {
            let peaks = peak_positions(size).iter().map(|p| nodes[p]).collect();
            let frontier = Frontier::from_parts(size, peaks).unwrap();
            assert_eq!(frontier.root(), d(ROOTS[size as usize]));
        }
        assert_eq!(
            Frontier::from_parts(6, vec![empty_root()]),
            Err(MerkleError::PeakCount {
                size: 6,
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn push_reports_the_nodes_it_completes() {
        let leaves = leaves();
        let mut frontier =
            Frontier::from_parts(6, peak_positions(6).iter().map(|p| nodes()[p]).collect())
                .unwrap();
        let mut created = Vec::new();
        frontier.push(leaves[6], &mut created);
        assert_eq!(created, vec![(0, 6, leaves[6])]);
        created.clear();
        frontier.push(leaves[7], &mut created);
        let pair = node_hash(&leaves[6], &leaves[7]);
        let quad = node_hash(&root(&leaves[4..6]), &pair);
        assert_eq!(
            created,
            vec![
                (0, 7, leaves[7]),
                (1, 3, pair),
                (2, 1, quad),
                (3, 0, d(ROOTS[8]))
            ]
        );
        assert_eq!(frontier.size(), 8);
        assert_eq!(frontier.peaks(), &[d(ROOTS[8])]);
    }
}
