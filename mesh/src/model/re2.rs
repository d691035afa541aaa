//! What Envoy's regex engine, RE2, refuses of a pattern the `regex` crate takes, so that a
//! routing file Envoy would reject is refused when it is read, not when Envoy starts.
//!
//! Both engines share their syntax (no look-around, no backreferences); RE2 differs in three
//! limits checked here: counted repetitions up to 1000 (nested ones multiplied), character
//! classes without set operations or nested classes (RE2 takes `[a[b]]` and `[a&&b]` too, as
//! other characters: the pattern would mean one thing here and another to Envoy), and a
//! compiled program of at most [`MAX_PROGRAM_SIZE`] instructions (the error level istiod gives
//! every proxy). Each was held against `envoy --mode validate`.

use regex_syntax::ast::parse::Parser;
use regex_syntax::ast::{Ast, ClassSet, ClassSetItem, GroupKind, RepetitionKind, RepetitionRange};

/// RE2's largest repetition count, `kMaxRepeat` (also the bound of nested counts multiplied).
pub(crate) const MAX_REPEAT: u32 = 1000;

/// The program size istiod sets as the error level of every proxy
/// (`re2.max_program_size.error_level`, pilot's pkg/bootstrap/config.go); Envoy refuses a
/// route whose regex compiles to more instructions.
pub(crate) const MAX_PROGRAM_SIZE: u64 = 32_768;

/// Why RE2 would refuse `pattern`, in one line; `None` when it would take it.
pub(crate) fn refusal(pattern: &str) -> Option<String> {
    let ast = match Parser::new().parse(pattern) {
        Ok(ast) => ast,
        Err(err) => return Some(format!("{} (at character {})", err.kind(), err.span().start.column)),
    };
    if let Some(problem) = unsupported(&ast, 1) {
        return Some(problem);
    }
    let size = program_size(&ast);
    (size > MAX_PROGRAM_SIZE).then(|| {
        format!(
            "compiles to about {size} RE2 instructions, over the {MAX_PROGRAM_SIZE} Envoy takes under Istio \
             (re2.max_program_size.error_level)"
        )
    })
}

/// The first construct RE2 does not take; `nested` is the product of the counted repetitions
/// around `ast` (RE2's `RepetitionWalker`).
fn unsupported(ast: &Ast, nested: u64) -> Option<String> {
    match ast {
        Ast::Repetition(repetition) => {
            let nested = match counts(&repetition.op.kind) {
                Some((min, max)) => {
                    let bound = max.unwrap_or(min);
                    if min > MAX_REPEAT || max.is_some_and(|max| max > MAX_REPEAT) {
                        return Some(format!("a repetition count over {MAX_REPEAT}, which RE2 refuses"));
                    }
                    let nested = nested.saturating_mul(u64::from(bound.max(1)));
                    if nested > u64::from(MAX_REPEAT) {
                        return Some(format!(
                            "nested repetition counts multiply to {nested}, over the {MAX_REPEAT} RE2 takes"
                        ));
                    }
                    nested
                }
                None => nested,
            };
            unsupported(&repetition.ast, nested)
        }
        Ast::Group(group) => unsupported(&group.ast, nested),
        Ast::Alternation(alternation) => alternation.asts.iter().find_map(|a| unsupported(a, nested)),
        Ast::Concat(concat) => concat.asts.iter().find_map(|a| unsupported(a, nested)),
        Ast::ClassBracketed(class) => match &class.kind {
            ClassSet::BinaryOp(_) => Some(
                "a character class set operation (&&, --, ~~): RE2 reads those as characters, so Envoy would match \
                 something else"
                    .into(),
            ),
            ClassSet::Item(item) => nested_class(item),
        },
        _ => None,
    }
}

fn nested_class(item: &ClassSetItem) -> Option<String> {
    match item {
        ClassSetItem::Bracketed(_) => Some(
            "a character class inside a class: RE2 reads its `[` as a character, so Envoy would match something else"
                .into(),
        ),
        ClassSetItem::Union(union) => union.items.iter().find_map(nested_class),
        _ => None,
    }
}

/// A counted repetition's bounds (`None` for `*`, `+`, `?`).
fn counts(kind: &RepetitionKind) -> Option<(u32, Option<u32>)> {
    match kind {
        RepetitionKind::Range(RepetitionRange::Exactly(n)) => Some((*n, Some(*n))),
        RepetitionKind::Range(RepetitionRange::AtLeast(n)) => Some((*n, None)),
        RepetitionKind::Range(RepetitionRange::Bounded(min, max)) => Some((*min, Some(*max))),
        _ => None,
    }
}

/// A lower bound of the instructions RE2 compiles `ast` to: one per byte of a literal and per
/// class or `.` (RE2 spends more on Unicode ranges), two per capture, one per alternative and
/// optional copy, and a copy of the repeated part per count. A lower bound refuses nothing
/// Envoy would take, and catches what a pattern such as `(a{1000}){30}` would cost.
fn program_size(ast: &Ast) -> u64 {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) | Ast::Assertion(_) => 0,
        Ast::Literal(literal) => literal.c.len_utf8() as u64,
        Ast::Dot(_) | Ast::ClassUnicode(_) | Ast::ClassPerl(_) | Ast::ClassBracketed(_) => 1,
        Ast::Repetition(repetition) => {
            let inner = program_size(&repetition.ast);
            match counts(&repetition.op.kind) {
                // `x{n,m}`: n copies, then m-n optional ones.
                Some((min, Some(max))) => {
                    let optional = u64::from(max.saturating_sub(min));
                    inner.saturating_mul(u64::from(min)).saturating_add(optional.saturating_mul(inner + 1))
                }
                Some((min, None)) => inner.saturating_mul(u64::from(min.max(1))).saturating_add(1),
                None => inner.saturating_add(1),
            }
        }
        Ast::Group(group) => {
            let capture = if matches!(group.kind, GroupKind::NonCapturing(_)) { 0 } else { 2 };
            program_size(&group.ast).saturating_add(capture)
        }
        Ast::Alternation(alternation) => {
            let branches = alternation.asts.iter().map(program_size).fold(0u64, u64::saturating_add);
            branches.saturating_add(alternation.asts.len().saturating_sub(1) as u64)
        }
        Ast::Concat(concat) => concat.asts.iter().map(program_size).fold(0u64, u64::saturating_add),
    }
}

/// The last line of a `regex` crate error (its first lines repeat the pattern and point at
/// the place): what is wrong, in one line.
pub(crate) fn one_line(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baggage_patterns_of_the_samples_are_taken() {
        for pattern in [
            r"(.*,)?\s*user\s*=\s*jason\s*(;[^,]*)?(,.*)?",
            r"^(.*?;)?(user=jason)(;.*)?$",
            "v[0-9]{1,3}",
            "(?i)chrome",
            "a{1000}",
        ] {
            assert_eq!(refusal(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn what_re2_refuses_is_refused_in_one_line() {
        for (pattern, expected) in [
            ("(abc", "unclosed group"),
            ("a{1001}", "over 1000"),
            ("(a{100}){11}", "multiply to 1100"),
            ("[a-z&&[^x]]", "set operation"),
            ("[a[bc]]", "inside a class"),
            ("(?=x)", "look-around"),
            (&"(abcdefghij){100}".repeat(40), "RE2 instructions"),
        ] {
            let refusal = refusal(pattern).unwrap_or_else(|| panic!("{pattern:?} taken"));
            assert!(refusal.contains(expected), "{pattern:?}: {refusal}");
            assert!(!refusal.contains('\n'), "{refusal}");
        }
    }

    #[test]
    fn the_estimate_grows_with_counts_and_stays_below_re2s() {
        let size = |p: &str| program_size(&Parser::new().parse(p).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(size("abc"), 3);
        assert_eq!(size("a{10}"), 10);
        assert_eq!(size("a{2,4}"), 2 + 2 * 2);
        assert_eq!(size("(a|b)"), 1 + 1 + 1 + 2);
        assert!(size("(abcdefghij){100}") > 1000);
    }
}
