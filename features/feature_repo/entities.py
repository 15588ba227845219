"""The two things Tessera computes features for: a customer and a product."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A resolved customer: Tessera's stable customer id from identity resolution.",
)

product = Entity(
    name="product",
    join_keys=["sku"],
    value_type=ValueType.STRING,
    description="A product of the catalogue, by the retailer's SKU.",
)
