"""Privacy: the PII vault (encryption, blind indexes, audited decryption)."""
