//! Benchmark placeholder (filled in with the benchmark work).
fn main() {}
