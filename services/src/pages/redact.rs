//! Masks what the public page must never show in full: a mobile or landline number, an ID
//! number or any other long run of digits that turns up in free text (a complaint's basis, an
//! officer's credential, a comment). The first 3 and last 4 digits stay, so a reader can
//! still tell two numbers apart. Digits glued to a Latin letter belong to a code, such as a
//! certificate number `ZF43020000001`, which the enterprise needs in full to check the officer.

use std::borrow::Cow;

/// Runs of at least this many digits are masked: mobile numbers have 11, ID numbers 15 or 18.
const MIN_DIGITS: usize = 11;
const KEEP_HEAD: usize = 3;
const KEEP_TAIL: usize = 4;

/// `text` with every long number masked, e.g. `13800138000` → `138****8000`. Digits joined
/// by single spaces or hyphens (`0971-8123456`, `138 0013 8000`) count as one number, and an
/// ID number's final check character `X` belongs to it.
pub fn redact(text: &str) -> Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (end, digits) = number_at(&chars, i);
        let in_code = (i > 0 && chars[i - 1].is_ascii_alphabetic())
            || chars.get(end).is_some_and(char::is_ascii_alphabetic);
        if digits.len() >= MIN_DIGITS && !in_code {
            out.push_str(&mask(&digits));
            changed = true;
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// The number starting at `start` (a digit): where it ends, and its digits (and check `X`).
fn number_at(chars: &[char], start: usize) -> (usize, String) {
    let mut digits = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            digits.push(c);
            i += 1;
        } else if (c == ' ' || c == '-') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            i += 1;
        } else {
            break;
        }
    }
    if digits.len() == 17 && chars.get(i).is_some_and(|c| *c == 'X' || *c == 'x') {
        digits.push('X');
        i += 1;
    }
    (i, digits)
}

fn mask(digits: &str) -> String {
    let n = digits.chars().count();
    let head: String = digits.chars().take(KEEP_HEAD).collect();
    let tail: String = digits.chars().skip(n - KEEP_TAIL).collect();
    format!("{head}{}{tail}", "*".repeat(n - KEEP_HEAD - KEEP_TAIL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_number_keeps_only_its_first_three_and_last_four_digits() {
        assert_eq!(redact("联系电话13800138000。"), "联系电话138****8000。");
        assert_eq!(redact("电话 138 0013 8000"), "电话 138****8000");
        assert_eq!(redact("座机0971-8123456"), "座机097****3456");
    }

    fn stars(n: usize) -> String {
        "*".repeat(n)
    }

    #[test]
    fn an_id_number_is_masked_with_its_check_character() {
        assert_eq!(
            redact("11010519491231002X"),
            format!("110{}002X", stars(11))
        );
        assert_eq!(
            redact("身份证630102199001011234号"),
            format!("身份证630{}1234号", stars(11))
        );
        assert_eq!(
            redact("执法证63010219900101123x"),
            format!("执法证630{}123X", stars(11))
        );
    }

    #[test]
    fn short_numbers_and_ordinary_text_are_left_alone() {
        for text in [
            "ZF630100001",
            "ZF43020000001",
            "编号ZF13800138000A",
            "警123456",
            "《中华人民共和国食品安全法》第一百一十条",
            "2026-12-03 执法",
            "91630100MA7F3XKQ1X",
            "第65条",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn every_digit_of_a_long_number_but_seven_is_hidden() {
        let masked = redact("6222021234567890123");
        assert_eq!(masked, format!("622{}0123", stars(12)));
        assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 7);
    }
}
