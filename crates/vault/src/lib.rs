//! hush-vault: a fixed-slot key vault and per-record encryption that make deletion final.
