//! The drop-in command line (being written).
