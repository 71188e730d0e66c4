//! ed25519 batch verification in which the terms of one public key are merged.
//!
//! The batch equation is ed25519-dalek's `verify_batch`: for signatures `(Rᵢ, sᵢ)` by keys `Aᵢ`
//! over messages `Mᵢ`, with `kᵢ = SHA-512(Rᵢ ‖ Aᵢ ‖ Mᵢ)` and random 128-bit `zᵢ`,
//!
//! ```text
//! [−Σ zᵢ·sᵢ] B + Σ [zᵢ] Rᵢ + Σ [zᵢ·kᵢ] Aᵢ = 0
//! ```
//!
//! A log's signatures come from few keys (the notary seals every event; an officer signs many
//! commands), and `Σ [zᵢ·kᵢ] Aᵢ` over the signatures of one key `A` is `[Σ zᵢ·kᵢ] A`: one point
//! in the multi-scalar multiplication per key instead of one per signature, which is most of
//! the cost beside the decompression of each `Rᵢ`. Everything else is as ed25519-dalek does it:
//! each `sᵢ` must be reduced (else the batch fails), and the `zᵢ` are derived from every input
//! (SHA-512 over every `kᵢ` and `sᵢ`, then per signature), so that no signer can choose them.
//!
//! A batch that holds proves each signature valid with overwhelming probability; one that fails
//! says only that some signature does not hold, and the caller checks them one by one (strictly)
//! to name it. Like any batch check it is cofactorless and does not refuse what strict single
//! verification refuses for small-order points, so it is always followed by that one-by-one
//! check when it fails, never used to refuse.

use crate::keys::{PublicKey, SignatureBytes};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use sha2::{Digest as _, Sha512};
use std::collections::HashMap;

/// One signature to check: by `key`, over `message`.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a SignatureBytes,
}

/// Whether every signature of `items` holds (true for none).
pub fn verify(items: &[Item<'_>]) -> bool {
    let mut transcript = Sha512::new_with_prefix(b"saoma ed25519 batch verification");
    let mut read = Vec::with_capacity(items.len());
    for item in items {
        let signature = &item.signature.0;
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
        else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(*signature.r_bytes()).decompress() else {
            return false;
        };
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(signature.r_bytes())
                .chain_update(item.key.0.as_bytes())
                .chain_update(item.message),
        );
        transcript.update(k.as_bytes());
        transcript.update(s.as_bytes());
        read.push((s, r, k));
    }
    let seed = transcript.finalize();

    let mut base = Scalar::ZERO;
    let mut z_r = Vec::with_capacity(read.len());
    let mut keys: HashMap<&[u8; 32], (Scalar, EdwardsPoint)> = HashMap::new();
    for (i, ((s, r, k), item)) in read.into_iter().zip(items).enumerate() {
        let z = random_coefficient(&seed, i);
        base += z * s;
        z_r.push((z, r));
        keys.entry(item.key.0.as_bytes())
            .or_insert_with(|| (Scalar::ZERO, item.key.0.to_edwards()))
            .0 += z * k;
    }
    let (scalars, points): (Vec<Scalar>, Vec<EdwardsPoint>) =
        std::iter::once((-base, ED25519_BASEPOINT_POINT))
            .chain(z_r)
            .chain(keys.into_values())
            .unzip();
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// `zᵢ`: 128 bits of SHA-512(seed ‖ i).
fn random_coefficient(seed: &[u8], i: usize) -> Scalar {
    let digest = Sha512::new()
        .chain_update(seed)
        .chain_update((i as u64).to_le_bytes())
        .finalize();
    let mut z = [0u8; 16];
    z.copy_from_slice(&digest[..16]);
    Scalar::from(u128::from_le_bytes(z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use proptest::prelude::*;

    struct Signed {
        key: PublicKey,
        message: Vec<u8>,
        signature: SignatureBytes,
    }

    /// `count` signatures, by `keys` distinct keys in turn (so keys repeat).
    fn signed(count: usize, keys: usize, salt: u8) -> Vec<Signed> {
        let signers: Vec<SigningKey> = (0..keys)
            .map(|k| SigningKey::from_bytes(&[k as u8 ^ salt; 32]))
            .collect();
        (0..count)
            .map(|i| {
                let signer = &signers[i % keys];
                let message = format!("message {i} of {salt}").into_bytes();
                Signed {
                    key: PublicKey(signer.verifying_key()),
                    signature: SignatureBytes(signer.sign(&message)),
                    message,
                }
            })
            .collect()
    }

    fn items(signed: &[Signed]) -> Vec<Item<'_>> {
        signed
            .iter()
            .map(|s| Item {
                key: &s.key,
                message: &s.message,
                signature: &s.signature,
            })
            .collect()
    }

    /// ed25519-dalek's own batch verification of the same signatures.
    fn dalek(signed: &[Signed]) -> bool {
        let messages: Vec<&[u8]> = signed.iter().map(|s| s.message.as_slice()).collect();
        let signatures: Vec<_> = signed.iter().map(|s| s.signature.0).collect();
        let keys: Vec<_> = signed.iter().map(|s| s.key.0).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }

    #[test]
    fn no_signature_is_a_batch_that_holds() {
        assert!(verify(&[]));
    }

    #[test]
    fn a_batch_of_one_key_and_of_many_holds() {
        for keys in [1, 2, 7, 64] {
            let s = signed(64, keys, 1);
            assert!(verify(&items(&s)), "{keys} keys");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever is changed — a byte of a message or of a signature, or a key swapped for
        /// another signer's — the batch fails, exactly when ed25519-dalek's batch fails.
        #[test]
        fn a_batch_holds_exactly_when_ed25519_dalek_s_does(
            count in 1usize..40,
            keys in 1usize..6,
            salt in any::<u8>(),
            change in 0u8..4,
            at in any::<prop::sample::Index>(),
            byte in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut s = signed(count, keys, salt);
            let i = at.index(count);
            match change {
                0 => {}
                1 => {
                    let b = byte.index(s[i].message.len());
                    s[i].message[b] ^= 1 << bit;
                }
                2 => {
                    let mut bytes = s[i].signature.0.to_bytes();
                    bytes[byte.index(64)] ^= 1 << bit;
                    s[i].signature = SignatureBytes(ed25519_dalek::Signature::from_bytes(&bytes));
                }
                _ => {
                    // Not one of `signed`'s keys, whose bytes are all alike.
                    let mut other = [0xee; 32];
                    other[0] = 0;
                    s[i].key = PublicKey(SigningKey::from_bytes(&other).verifying_key());
                }
            }
            let holds = verify(&items(&s));
            prop_assert_eq!(holds, change == 0);
            prop_assert_eq!(holds, dalek(&s));
        }
    }

    #[test]
    fn an_unreduced_s_fails_the_batch() {
        let mut s = signed(3, 2, 9);
        let mut bytes = s[1].signature.0.to_bytes();
        // s + ℓ: the same point equation, but not the reduced scalar RFC 8032 requires.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for j in 0..32 {
            let sum = u16::from(bytes[32 + j]) + u16::from(l[j]) + carry;
            bytes[32 + j] = sum as u8;
            carry = sum >> 8;
        }
        s[1].signature = SignatureBytes(ed25519_dalek::Signature::from_bytes(&bytes));
        assert!(!verify(&items(&s)));
    }
}
