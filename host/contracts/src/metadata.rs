//! (filled in by the contract family work)
