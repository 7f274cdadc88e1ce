//! The check scheduler (owned by a helper).
