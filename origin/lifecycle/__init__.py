"""Storage that pays for itself: tiers, variant eviction, and what storage costs.

    rules        which objects go to which tier, when (settings → store placement, S3 rules)
    usage        last accesses and stored variants, noted in memory, written in batches
    metered      a store wrapper that counts requests by class and feeds `usage`
    inventory    a walk of the store: bytes and objects by class and tier
    transitions  the rules applied to a store without a lifecycle engine (the local one)
    evict        lazy variants brought under IMAGEHOST_VARIANT_BUDGET, coldest first
    run          `imagehost lifecycle`: the steps above under the maintenance guard
    restore      asking for an archived source back, and how long that takes
    prices       price tables (AWS list prices by default; R2, GCS, B2; a JSON file)
    cost         `imagehost cost`: monthly cost, per million images, by class and tier
"""
