"""The labels requests are counted under: route templates, a bounded set whatever the paths asked."""

import pytest

from serving.metrics import route_label


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/recommend", "/recommend"),
        ("/customers/C000000002", "/customers/{customer_id}"),
        ("/customers/C1/extra", "other"),
        ("/segments/vip/members", "/segments/{name}/members"),
        ("/desk", "/desk"),
        ("/desk/customers/C000000002", "/desk"),
        ("/desk/static/desk.css", "/desk"),
        ("/deskx", "other"),
        ("/wp-login.php", "other"),
    ],
)
def test_a_path_is_counted_under_its_route_template(path: str, label: str) -> None:
    assert route_label(path) == label
