//! The Tokio runtime (being written).
