//! Figures the benchmarks print for other commands to read back: a line `figure <name> <value>`
//! in a bench's output (which `./dev bench` keeps in `target/bench/<bench>.out`). The capacity
//! model (`./dev bench capacity`) is recomputed from them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;

/// Prints one figure line.
pub fn figure(name: &str, value: f64) {
    println!("figure {name} {value}");
}

/// Where `./dev bench` keeps a bench's output.
pub fn output_path(bench: &str) -> PathBuf {
    crate::workspace_root()
        .join("target")
        .join("bench")
        .join(format!("{bench}.out"))
}

/// The figures in a bench's kept output; `None` when it has not been run.
pub fn figures_of(bench: &str) -> Option<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(output_path(bench)).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let mut parts = l.strip_prefix("figure ")?.split_whitespace();
                Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
            })
            .collect(),
    )
}

/// An attribute value's size as DynamoDB bills it (UTF-8 bytes of strings, about half the
/// digits of numbers, 1 for booleans and nulls, 3 bytes of overhead per map or list plus one
/// per element).
pub fn attribute_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + attribute_bytes(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + attribute_bytes(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// An item's size as DynamoDB bills it.
pub fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + attribute_bytes(v)).sum()
}
