//! Properties of the Merkle tree: the frontier agrees with the recursive tree hash, proofs
//! built from the nodes it reports verify, and every tampered proof is refused.

use proptest::prelude::*;
use saoma_domain::canonical::Digest;
use saoma_domain::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, peak_positions, root, verify_consistency,
    verify_inclusion, Frontier,
};
use std::collections::HashMap;

/// `n` distinct leaf hashes.
fn leaves(seed: u64, n: u64) -> Vec<Digest> {
    (0..n)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

type Nodes = HashMap<(u32, u64), Digest>;

/// The nodes a store would keep: exactly what `push` reports.
fn nodes(leaves: &[Digest]) -> Nodes {
    let mut frontier = Frontier::new();
    let mut created = Vec::new();
    for leaf in leaves {
        frontier.push(*leaf, &mut created);
    }
    let nodes: Nodes = created.iter().map(|&(l, i, h)| ((l, i), h)).collect();
    assert_eq!(nodes.len(), created.len(), "a node was reported twice");
    nodes
}

/// A node source for the tree of `size` that fails the test if asked for anything but a
/// perfect subtree within that tree.
fn source(nodes: &Nodes, size: u64) -> impl FnMut(u32, u64) -> Digest + '_ {
    move |level, index| {
        assert!(
            (index + 1) << level <= size,
            "node ({level}, {index}) is not within the tree of size {size}"
        );
        nodes[&(level, index)]
    }
}

fn flip(d: &Digest, bit: usize) -> Digest {
    let mut d = *d;
    d.0[bit / 8 % 32] ^= 1 << (bit % 8);
    d
}

/// Every way of spoiling a proof: each element altered, one dropped, one added anywhere.
fn tampered(proof: &[Digest], bit: usize, extra: Digest) -> Vec<Vec<Digest>> {
    let mut out = Vec::new();
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i] = flip(&p[i], bit);
        out.push(p);
        let mut p = proof.to_vec();
        p.remove(i);
        out.push(p);
    }
    for i in 0..=proof.len() {
        let mut p = proof.to_vec();
        p.insert(i, extra);
        out.push(p);
        if let Some(&neighbour) = proof.get(i) {
            let mut p = proof.to_vec();
            p.insert(i, neighbour);
            out.push(p);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_frontier_agrees_with_the_tree_hash(seed: u64, n in 1u64..=300) {
        let leaves = leaves(seed, n);
        let mut frontier = Frontier::new();
        let mut created = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf, &mut created);
            let size = i as u64 + 1;
            prop_assert_eq!(frontier.size(), size);
            prop_assert_eq!(frontier.root(), root(&leaves[..=i]));
            // The peaks are the nodes at the positions a store loads them from.
            let nodes: Nodes = created.iter().map(|&(l, i, h)| ((l, i), h)).collect();
            let peaks: Vec<Digest> = peak_positions(size).iter().map(|p| nodes[p]).collect();
            prop_assert_eq!(frontier.peaks(), &peaks[..]);
            prop_assert_eq!(&Frontier::from_parts(size, peaks).unwrap(), &frontier);
        }
        // Every perfect subtree is reported once, with its hash.
        prop_assert_eq!(created.len() as u64, 2 * n - u64::from(n.count_ones()));
        for &(level, index, hash) in &created {
            let (start, end) = (index << level, (index + 1) << level);
            prop_assert!(end <= n);
            prop_assert_eq!(hash, root(&leaves[start as usize..end as usize]));
        }
    }

    #[test]
    fn inclusion_proofs_verify(seed: u64, n in 1u64..=300, pick: u64) {
        let leaves = leaves(seed, n);
        let nodes = nodes(&leaves);
        // Every leaf of the whole tree, and of one smaller tree.
        let smaller = 1 + pick % n;
        for size in [n, smaller] {
            let head = root(&leaves[..size as usize]);
            for index in 0..size {
                let proof = inclusion_proof(index, size, source(&nodes, size)).unwrap();
                prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &head));
            }
        }
    }

    #[test]
    fn tampered_inclusion_proofs_fail(
        seed: u64, n in 1u64..=300, pick: u64, other: u64, bit in 0usize..256,
    ) {
        let leaves = leaves(seed, n);
        let nodes = nodes(&leaves);
        let index = pick % n;
        let leaf = leaves[index as usize];
        let head = root(&leaves);
        let proof = inclusion_proof(index, n, source(&nodes, n)).unwrap();
        prop_assert!(verify_inclusion(index, n, &leaf, &proof, &head));

        for p in tampered(&proof, bit, flip(&head, bit)) {
            prop_assert!(!verify_inclusion(index, n, &leaf, &p, &head));
        }
        prop_assert!(!verify_inclusion(index, n, &flip(&leaf, bit), &proof, &head));
        prop_assert!(!verify_inclusion(index, n, &leaf, &proof, &flip(&head, bit)));
        // Another leaf's position. (A size with the same path shape computes the same root,
        // which commits to the true size; twice or half the size always changes the shape.)
        let wrong = (index + 1 + other % n) % n;
        if wrong != index {
            prop_assert!(!verify_inclusion(wrong, n, &leaf, &proof, &head));
        }
        prop_assert!(!verify_inclusion(n, n, &leaf, &proof, &head));
        prop_assert!(!verify_inclusion(index, 2 * n, &leaf, &proof, &head));
        prop_assert!(!verify_inclusion(index, n / 2, &leaf, &proof, &head));
    }

    #[test]
    fn consistency_proofs_verify(seed: u64, n in 1u64..=300, pick: u64) {
        let leaves = leaves(seed, n);
        let nodes = nodes(&leaves);
        // From every older tree to the whole tree, and to one smaller tree.
        let smaller = 1 + pick % n;
        for new in [n, smaller] {
            let new_root = root(&leaves[..new as usize]);
            for old in 1..=new {
                let old_root = root(&leaves[..old as usize]);
                let proof = consistency_proof(old, new, source(&nodes, new)).unwrap();
                prop_assert_eq!(proof.is_empty(), old == new);
                prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
            }
        }
    }

    #[test]
    fn tampered_consistency_proofs_fail(
        seed: u64, new in 2u64..=300, pick: u64, bit in 0usize..256,
    ) {
        let leaves = leaves(seed, new);
        let nodes = nodes(&leaves);
        let old = 1 + pick % (new - 1);
        let (old_root, new_root) = (root(&leaves[..old as usize]), root(&leaves));
        let proof = consistency_proof(old, new, source(&nodes, new)).unwrap();
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof));

        for p in tampered(&proof, bit, flip(&new_root, bit)) {
            prop_assert!(!verify_consistency(old, new, &old_root, &new_root, &p));
        }
        prop_assert!(!verify_consistency(old, new, &old_root, &new_root, &[]));
        prop_assert!(!verify_consistency(old, new, &flip(&old_root, bit), &new_root, &proof));
        prop_assert!(!verify_consistency(old, new, &old_root, &flip(&new_root, bit), &proof));
        prop_assert!(!verify_consistency(old, new, &new_root, &old_root, &proof));
        prop_assert!(!verify_consistency(new, old, &old_root, &new_root, &proof));
        // Other old sizes, and new sizes of another shape (as for inclusion, a new size of the
        // same shape computes the same root; the root commits to the true size).
        for (o, n) in [(0, new), (old - 1, new), (old + 1, new), (old, 2 * new), (old, new / 2)] {
            prop_assert!(!verify_consistency(o, n, &old_root, &new_root, &proof), "{} {}", o, n);
        }
    }
}
