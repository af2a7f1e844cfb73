"""Layer 1, the bottom: the config file. Schema v1 (`schema`), reading and writing the TOML
(`files`: atomic, 0600, comments kept), value checks and masks (`fields`), endpoints per cloud
(`clouds`), the non-interactive answers (`answers`) and the wizard's drafts (`drafts`)."""
