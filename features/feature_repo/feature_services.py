"""One feature service per model, named like the model: the exact vector each model trains and serves on."""

from feast import FeatureService, FeatureView

from features.feature_repo.feature_views import (
    customer_engagement,
    customer_loyalty,
    customer_profile,
    customer_realtime,
    customer_service,
    customer_transactions,
    product_catalog,
    product_offer,
    product_popularity,
)
from features.feature_repo.on_demand import customer_request_time


def _without_times(view: FeatureView) -> FeatureView:
    """The view without its raw timestamps: the request-time view turns them into ages at the cutoff."""
    return view[[f.name for f in view.features if not f.name.endswith("_at")]]


churn_v1 = FeatureService(
    name="churn_v1",
    description="Churn model: will the customer stop buying? Behaviour, engagement, service and loyalty.",
    features=[
        _without_times(customer_transactions),
        _without_times(customer_engagement),
        _without_times(customer_service),
        customer_loyalty[["loyalty_member", "loyalty_tier", "loyalty_points"]],
        customer_profile[["age_band", "region", "consent_email"]],
        customer_realtime[["cart_items"]],
        customer_request_time,
    ],
)

cltv_v1 = FeatureService(
    name="cltv_v1",
    description="Customer-lifetime-value model: how much will the customer spend? Spend history and loyalty.",
    features=[
        _without_times(customer_transactions),
        customer_engagement[["email_opens_90d", "web_sessions_90d", "product_views_90d"]],
        customer_loyalty[["loyalty_member", "loyalty_tier", "loyalty_points"]],
        customer_profile[["age_band", "region"]],
        customer_request_time[["days_since_last_order", "tenure_days", "membership_days"]],
    ],
)

next_best_product_v1 = FeatureService(
    name="next_best_product_v1",
    description="Next-best-product model: scores (customer, product) pairs; entity rows carry customer_id and sku.",
    features=[
        customer_transactions[["orders_365d", "spend_365d", "avg_order_value", "distinct_categories_365d"]],
        customer_realtime[["cart_items", "last_order_skus"]],
        customer_profile[["consent_personalisation"]],
        customer_request_time[["days_since_last_order", "hours_since_last_event"]],
        product_popularity,
        product_catalog,
        product_offer,
    ],
)
