"""Synthetic demo data for CDP Lite: a DTC skincare brand's Shopify, Recharge-like subscriptions,
Klaviyo, GA4 and helpdesk data, with ground truth for identity resolution and personas.

    from orchestration.sources.demo import DemoConfig, generate_demo
    data = generate_demo(DemoConfig(seed=42, scale=1.0, as_of=date(2026, 11, 25)))
    data.tables["raw_shopify.orders"]        # contract columns incl. plaintext PII
    data.truth["demo_truth.persons"]         # person_id, persona, is_buyer
"""

from .config import PERSONA_COUNTS, DemoConfig, DemoData
from .generate import generate_demo, iter_demo

__all__ = ["DemoConfig", "DemoData", "generate_demo", "iter_demo", "PERSONA_COUNTS"]
