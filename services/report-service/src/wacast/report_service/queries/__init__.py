"""The read side: query functions over the `reports` tables, one module per area.

Every statement filters by the asking tenant (invariant 8): an id of another tenant is
simply not found. Lists are keyset-paged on a stream sequence, carried in an opaque cursor.
"""
