"""Store keys: what each one holds (tiers, eviction and cost reports go by it)."""
import pytest

from origin import keys


@pytest.mark.parametrize("key, cls", [
    (keys.source_key("C0ntent1", "jpeg"), "source"),
    (keys.master_key("C0ntent1", False), "master"),
    ("images/C0ntent1/intermediate.jpg", "intermediate"),
    ("images/C0ntent1/intermediate.1200.jpg", "intermediate"),
    (keys.variant_key("C0ntent1", "sq150", "webp"), "thumbnail"),
    (keys.variant_key("C0ntent1", "sm64", "avif"), "thumbnail"),
    (keys.variant_key("C0ntent1", "w1200", "avif"), "variant"),
    (keys.variant_key("C0ntent1", "original", "jpeg"), "variant"),
    (keys.kept_source_key("C0ntent1", "png"), "kept_source"),
    (keys.record_key("Rec0rd12"), "record"),
    (keys.upload_key("Rec0rd12"), "upload"),
    (keys.quarantine_key("Rec0rd12"), "quarantine"),
])
def test_object_class(key, cls):
    assert keys.object_class(key) == cls
    assert (cls in keys.REGENERABLE) == (cls == "variant")
