"""The PII vault: normalization, blind indexes, AES-GCM round trips, key handling."""

from __future__ import annotations

import base64
import os
import stat

import pandas as pd
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.errors import CdpError
from orchestration.privacy import vault
from orchestration.privacy.blocklist import load_blocklist

KEYS = vault.VaultKeys.from_master(b"k" * 32)


def test_variants_of_one_email_and_phone_share_a_blind_index():
    emails, _ = vault.index_series(
        KEYS, pd.Series([" Sarah.Lee@Gmail.com ", "sarah.lee@gmail.com", "other@x.com"]), "email"
    )
    assert emails[0] == emails[1] != emails[2]
    phones, _ = vault.index_series(
        KEYS, pd.Series(["+1 (555) 201-3344", "5552013344", "555-201-3345"]), "phone"
    )
    assert phones[0] == phones[1] != phones[2]


def test_missing_and_empty_values_have_no_index():
    hashed, plain = vault.index_series(KEYS, pd.Series([None, "", "  "]), "email")
    assert hashed.isna().all() and plain == {}


def test_blind_index_depends_on_the_key_and_the_type():
    other = vault.VaultKeys.from_master(b"o" * 32)
    assert vault.blind_index(KEYS, "email", "a@b.c") != vault.blind_index(other, "email", "a@b.c")
    assert vault.blind_index(KEYS, "email", "x") != vault.blind_index(KEYS, "name", "x")


def test_encrypt_decrypt_round_trip_and_tamper_detection():
    h = vault.blind_index(KEYS, "email", "a@b.c")
    rows = vault.encrypt_many(KEYS, "email", {h: "a@b.c"})
    blob = bytes.fromhex(rows.loc[0, "ciphertext"][2:])
    assert vault.decrypt(KEYS, "email", h, blob) == "a@b.c"
    with pytest.raises(InvalidTag):  # the ciphertext is bound to its hash
        vault.decrypt(KEYS, "email", vault.blind_index(KEYS, "email", "z@b.c"), blob)


def test_key_file_is_created_0600_and_reused(tmp_path):
    first = vault.load_keys(None, tmp_path / "keys")
    path = tmp_path / "keys" / vault.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert vault.load_keys(None, tmp_path / "keys") == first
    path.chmod(0o644)
    with pytest.raises(CdpError, match="chmod 600"):
        vault.load_keys(None, tmp_path / "keys")


def test_env_key_must_be_32_bytes_of_base64(tmp_path):
    good = base64.b64encode(os.urandom(32)).decode()
    assert vault.load_keys(good, tmp_path).key_id
    with pytest.raises(CdpError, match="32 bytes"):
        vault.load_keys(base64.b64encode(b"short").decode(), tmp_path)
    with pytest.raises(CdpError, match="base64"):
        vault.load_keys("not base64 !!", tmp_path)


def test_blocklist_flags_junk_values():
    bl = load_blocklist()
    emails = vault.normalize(
        pd.Series(["Test@Example.com", "jane@shop.com", "test+1@x.io"]), "email"
    )
    assert bl.flags(emails, "email").tolist() == [True, False, True]
    phones = vault.normalize(pd.Series(["000-000-0000", "(555) 201-3344", "555 555 5555"]), "phone")
    assert bl.flags(phones, "phone").tolist() == [True, False, True]


def test_blocklist_errors_name_the_file(tmp_path):
    bad = tmp_path / "bl.yml"
    bad.write_text("email:\n  exakt: [a]\n")
    with pytest.raises(CdpError, match="bl.yml.*exakt"):
        load_blocklist(bad)


def test_names_keep_their_written_form_emails_their_normal_form():
    names, plain = vault.index_series(KEYS, pd.Series([" Sarah ", "sarah", "Mary  Ann"]), "name")
    assert names[0] == names[1]
    assert sorted(plain.values()) == ["Mary Ann", "Sarah"]
    _, emails = vault.index_series(KEYS, pd.Series([" Jane@Shop.COM "]), "email")
    assert list(emails.values()) == ["jane@shop.com"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
            st.from_regex(r"\s*[A-Za-z0-9 ().+-]{0,16}\s*", fullmatch=True),
            st.integers(min_value=0, max_value=10**12),
        ),
        max_size=12,
    ),
    st.sampled_from(vault.PII_TYPES),
)
def test_the_per_value_normalization_is_the_vectorised_one(values, pii_type):
    # index_series normalizes distinct values one by one; normalize() is the documented rule
    series = pd.Series(values, dtype=object)
    expected = [None if pd.isna(v) else v for v in vault.normalize(series, pii_type)]
    assert [vault.normalize_one(v, pii_type) for v in values] == expected
    hashed, plain = vault.index_series(KEYS, series, pii_type)
    want = [None if v is None else vault.blind_index(KEYS, pii_type, v) for v in expected]
    assert hashed.tolist() == want
    assert set(plain) == {h for h in want if h is not None}


def test_memoized_indexes_keep_keys_types_and_inputs_apart():
    other = vault.VaultKeys.from_master(b"o" * 32)
    a, _ = vault.index_series(KEYS, pd.Series(["5552013344"]), "phone")
    b, _ = vault.index_series(other, pd.Series(["5552013344"]), "phone")
    assert a[0] != b[0]  # the memo is per key
    # 5552013344.0 (a float) is not the string "5552013344": its text has a trailing ".0"
    c, _ = vault.index_series(KEYS, pd.Series([5552013344.0, "5552013344"], dtype=object), "phone")
    assert c[0] == vault.blind_index(KEYS, "phone", "+55520133440") and c[1] == a[0]
    # a repeated value encrypts to one ciphertext that still decrypts
    first = vault.encrypt_many(KEYS, "email", {"h1": "a@b.c"})
    again = vault.encrypt_many(KEYS, "email", {"h1": "a@b.c", "h2": "d@e.f"})
    assert again.loc[0, "ciphertext"] == first.loc[0, "ciphertext"]
    for _, row in again.iterrows():
        blob = bytes.fromhex(row["ciphertext"][2:])
        plain = {"h1": "a@b.c", "h2": "d@e.f"}[row["value_hash"]]
        assert vault.decrypt(KEYS, "email", row["value_hash"], blob) == plain
