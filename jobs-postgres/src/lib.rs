//! PostgreSQL storage for `jobs` (being built).
