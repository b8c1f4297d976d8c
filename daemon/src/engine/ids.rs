//! Ids: 22 base62 characters, shaped like Kestra's.
//!
//! Execution and task run ids start with the creation time, so ids made close together sort
//! close together. The stores key executions and their log lines by id: with random ids each
//! write of a batch landed in its own B-tree leaf, and every flush rewrote one page per row;
//! time-ordered ids put a batch's rows in a few neighbouring leaves. The 14 random characters
//! that follow (83 bits) keep ids unique and unguessable; an id says when it was made, which
//! every reader of the execution already sees.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 22;
/// 62^8 ms is about 6,900 years: the time prefix never wraps.
const TIME_LEN: usize = 8;

/// A new execution or task run id: creation time (ms, base62, fixed width) then random characters.
/// The alphabet is in ASCII order, so ids sort by creation time.
pub fn new_id() -> String {
    let mut id = String::with_capacity(ID_LEN);
    let mut ms = u64::try_from(now_ms()).unwrap_or(0);
    let mut time = [b'0'; TIME_LEN];
    for digit in time.iter_mut().rev() {
        *digit = ALPHABET[(ms % 62) as usize];
        ms /= 62;
    }
    id.extend(time.iter().map(|&b| b as char));
    push_random(&mut id, ID_LEN - TIME_LEN);
    id
}

/// `len` random base62 characters: for ids whose every character must be unpredictable.
pub fn random_id(len: usize) -> String {
    let mut id = String::with_capacity(len);
    push_random(&mut id, len);
    id
}

fn push_random(id: &mut String, len: usize) {
    let mut rng = rand::thread_rng();
    id.extend((0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char));
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_base62_characters_and_sort_by_creation_time() {
        let first = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_id();
        for id in [&first, &second] {
            assert_eq!(id.len(), ID_LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
        assert!(first < second, "{first} !< {second}");
        assert_ne!(first[TIME_LEN..], second[TIME_LEN..]);
    }

    #[test]
    fn the_alphabet_is_in_ascii_order_so_string_order_is_time_order() {
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn random_ids_have_the_asked_length() {
        let id = random_id(12);
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| ALPHABET.contains(&b)));
    }
}
