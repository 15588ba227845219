"""The BentoML service (`service`) over one engine (`engine`): champions and their reload (`champions`), the
precomputed recommender (`recommender`), churn and CLTV scorers (`scores`), online features and live events
(`features`), the customer directory and 360 history (`customers`), API keys (`auth`), settings, schemas and
`run.serve_forever`. See docs/serving.md.
"""

from tessera.core.feast_import import install

install()  # before serving's modules import Feast (tessera.core.feast_import)
