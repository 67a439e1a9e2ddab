//! Internal crate: see the files under this folder.
